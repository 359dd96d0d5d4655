package nntpd

import (
	"strings"
	"testing"

	"github.com/parley-list/parley/internal/archive"
)

// TestPathOf: an article that came by news keeps the path it came by
// behind this server's name; anything else is "not-for-mail".
func TestPathOf(t *testing.T) {
	tests := []struct{ head, want string }{
		{"From: a@example.org\r\n", "not-for-mail"},
		{"path: feed.example!origin.example!not-for-mail\r\nFrom: a@example.org\r\n", "feed.example!origin.example!not-for-mail"},
		{"Path: a b\r\n", "not-for-mail"},
		{"Path: a!<script>\r\n", "not-for-mail"},
		{"Path:\r\n", "not-for-mail"},
		{"Path: " + strings.Repeat("a!", 300) + "\r\n", "not-for-mail"},
	}
	for _, tc := range tests {
		if got := pathOf([]byte(tc.head)); got != tc.want {
			t.Errorf("pathOf(%.40q) = %q, want %q", tc.head, got, tc.want)
		}
	}
}

// TestAddressesOf: every address whose derived group name is the name
// is among those find looks up.
func TestAddressesOf(t *testing.T) {
	for _, addr := range []string{"dev@lists.example.org", "a.b@example.org", "x@y.z", "list@localhost"} {
		name := GroupName(addr)
		found := false
		for _, a := range addressesOf(name) {
			found = found || a == addr
		}
		if !found {
			t.Errorf("addressesOf(%q) = %q, want it to hold %s", name, addressesOf(name), addr)
		}
	}
	if got := addressesOf(strings.Repeat("a.", 100) + "a"); got != nil {
		t.Errorf("a name of 101 labels gave %d addresses, want none", len(got))
	}
}

// TestNewsHeaders: the news fields go first, the post's own are left out,
// and a post that is all header (the archive keeps those) or has an empty
// header is served whole instead of ending the server.
func TestNewsHeaders(t *testing.T) {
	ss := &session{s: &Server{o: Options{Hostname: "news.example"}}}
	g := &group{name: "org.example.dev"}
	news := "Path: news.example!not-for-mail\r\nNewsgroups: org.example.dev\r\nXref: news.example org.example.dev:7\r\n"
	tests := []struct{ raw, head, body string }{
		{"Subject: x\r\nXref: old 1\r\n\r\nbody\r\n", news + "Subject: x\r\n", "body\r\n"},
		{"Subject: all header\r\nNewsgroups: a,\r\n b\r\n", news + "Subject: all header\r\n", ""},
		{"Subject: no end", news + "Subject: no end\r\n", ""},
		{"\r\nbody only\r\n", news, "body only\r\n"},
	}
	for _, tc := range tests {
		var a archive.Article
		a.Raw, a.Article = []byte(tc.raw), 7
		head, body := ss.withNewsHeaders(target{g: g, article: a})
		if string(head) != tc.head || string(body) != tc.body {
			t.Errorf("withNewsHeaders(%q) = %q, %q; want %q, %q", tc.raw, head, body, tc.head, tc.body)
		}
	}
}
