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

// TestServiceAddr: every kind's address, written by ServiceAddr, reads
// back as the same list, kind and detail.
func TestServiceAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   Kind
		detail string
		want   string
	}{
		{KindPost, "", "dev@lists.example.org"},
		{KindRequest, "", "dev-request@lists.example.org"},
		{KindJoin, "", "dev-join@lists.example.org"},
		{KindLeave, "", "dev-leave@lists.example.org"},
		{KindConfirm, "T0k3n", "dev-confirm+T0k3n@lists.example.org"},
		{KindOwner, "", "dev-owner@lists.example.org"},
		{KindBounce, "", "dev-bounces@lists.example.org"},
		{KindBounce, "Bob=example.com", "dev-bounces+Bob=example.com@lists.example.org"},
	}
	for _, tc := range tests {
		got := ServiceAddr("dev@lists.example.org", tc.kind, tc.detail)
		if got != tc.want {
			t.Errorf("ServiceAddr(%s, %q) = %q, want %q", tc.kind, tc.detail, got, tc.want)
		}
		local, _, _ := strings.Cut(got, "@")
		if r, ok := Classify(local); !ok || r != (Route{List: "dev", Kind: tc.kind, Detail: tc.detail}) {
			t.Errorf("Classify(%q) = %+v, %v; want back list dev, %s, %q", local, r, ok, tc.kind, tc.detail)
		}
	}
}

func TestListID(t *testing.T) {
	t.Parallel()
	if got, want := ListID("Dev@Lists.Example.org"), "dev.lists.example.org"; got != want {
		t.Errorf("ListID() = %q, want %q", got, want)
	}
}

func TestIsMailerDaemon(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{"MAILER-DAEMON@mx.example.com": true, "mailer_daemon": true,
		"double-bounce@mx.example.com": true, "mailer@example.com": false, "bob@mailer-daemon.example": false} {
		if got := IsMailerDaemon(addr); got != want {
			t.Errorf("IsMailerDaemon(%q) = %v, want %v", addr, got, want)
		}
	}
}
