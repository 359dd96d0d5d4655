package mailaddr

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		local string
		want  Route
		ok    bool
	}{
		{"dev", Route{List: "dev", Kind: KindPost}, true},
		{"Dev", Route{List: "dev", Kind: KindPost}, true},
		{"dev-request", Route{List: "dev", Kind: KindRequest}, true},
		{"dev-join", Route{List: "dev", Kind: KindJoin}, true},
		{"dev-subscribe", Route{List: "dev", Kind: KindJoin}, true},
		{"dev-leave", Route{List: "dev", Kind: KindLeave}, true},
		{"dev-unsubscribe", Route{List: "dev", Kind: KindLeave}, true},
		{"dev-owner", Route{List: "dev", Kind: KindOwner}, true},
		{"dev-confirm+Tok3n", Route{List: "dev", Kind: KindConfirm, Detail: "Tok3n"}, true},
		{"dev-bounces", Route{List: "dev", Kind: KindBounce}, true},
		{"dev-bounces+Bob=example.org", Route{List: "dev", Kind: KindBounce, Detail: "Bob=example.org"}, true},
		{"rust-users-request", Route{List: "rust-users", Kind: KindRequest}, true},
		{"dev-confirm", Route{}, false},
		{"dev-confirm+", Route{}, false},
		{"dev+tag", Route{}, false},
		{"dev-request+x", Route{}, false},
		{"-request", Route{}, false},
		{"", Route{}, false},
		{"dév", Route{}, false},
	}
	for _, tc := range tests {
		got, ok := Classify(tc.local)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Classify(%q) = %+v, %v; want %+v, %v", tc.local, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzClassify: a classified route always names a valid list and a known
// kind, details appear only where allowed, and the list part does not
// depend on case.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"dev", "dev-request", "dev-confirm+abc", "dev-bounces+a=b.c", "x+y", "A-OWNER"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, local string) {
		r, ok := Classify(local)
		if !ok {
			return
		}
		if !validListLocal(r.List) {
			t.Fatalf("Classify(%q) list %q is not a valid list name", local, r.List)
		}
		switch r.Kind {
		case KindPost, KindRequest, KindJoin, KindLeave, KindOwner:
			if r.Detail != "" {
				t.Fatalf("Classify(%q) = %+v: detail on %s", local, r, r.Kind)
			}
		case KindConfirm:
			if r.Detail == "" {
				t.Fatalf("Classify(%q): confirm without token", local)
			}
		case KindBounce:
		default:
			t.Fatalf("Classify(%q): unknown kind %q", local, r.Kind)
		}
		base, detail, _ := strings.Cut(local, "+")
		up := strings.ToUpper(base)
		if detail != "" || strings.Contains(local, "+") {
			up += "+" + detail
		}
		if r2, ok2 := Classify(up); ok2 && (r2.List != r.List || r2.Kind != r.Kind) && strings.EqualFold(up, local) {
			t.Fatalf("Classify(%q) = %+v but Classify(%q) = %+v", local, r, up, r2)
		}
	})
}
