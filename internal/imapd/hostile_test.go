package imapd_test

import (
	"strings"
	"testing"
)

// TestHostileCommands replays hostile and malformed command lines: each
// gets a tagged refusal (never an untagged answer that looks like data),
// nothing is written, and the server answers the next connection.
func TestHostileCommands(t *testing.T) {
	f := newFixture(t)
	login := "a LOGIN anonymous x\r\nb SELECT dev@lists.example.org\r\n"
	tests := []struct {
		name, script string
		want         []string // substrings of the transcript
		not          []string
	}{
		{"commands before login", "c SELECT dev@lists.example.org\r\nd FETCH 1 (BODY[])\r\ne LIST \"\" *\r\n",
			[]string{"c BAD", "d BAD", "e BAD"}, []string{"dev@lists"}},
		{"fetch before select", "a LOGIN anonymous x\r\nc FETCH 1 (UID)\r\n", []string{"c BAD"}, nil},
		{"malformed sequence sets", login + "c FETCH 1:x (UID)\r\nd FETCH 0 (UID)\r\n",
			[]string{"c NO", "d NO"}, []string{"* 1 FETCH"}},
		{"UID range past the end", login + "c UID FETCH 4294967295:* (UID)\r\n", []string{"* 3 FETCH (UID 3)", "c OK"}, nil},
		{"SEARCH nested 200 deep", login + "c SEARCH " + strings.Repeat("OR ", 200) + strings.Repeat("ALL ", 201) + "\r\n",
			[]string{"c NO [LIMIT]"}, []string{"* SEARCH"}},
		{"NOT nested 100 deep", login + "c SEARCH " + strings.Repeat("NOT ", 100) + "ALL\r\n", []string{"c NO [LIMIT]"}, nil},
		{"APPEND of 100 MB", login + "c APPEND dev@lists.example.org {100000000}\r\n",
			[]string{"c NO [TOOBIG]"}, []string{"+ Ready"}},
		{"literal of 100 MB in SEARCH", login + "c SEARCH BODY {100000000}\r\n", []string{"c NO"}, []string{"+ Ready"}},
		{"200 KB command line", login + "c SEARCH BODY " + strings.Repeat("x", 200000) + "\r\n", []string{"c NO"}, nil},
	}
	before := archiveState(t, f.db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := session(t, f.addr, tt.script+"z LOGOUT\r\n")
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("transcript lacks %q:\n%.2000s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("transcript has %q:\n%.2000s", n, out)
				}
			}
			if out := session(t, f.addr, "a CAPABILITY\r\nz LOGOUT\r\n"); !strings.Contains(out, "a OK") {
				t.Fatalf("server no longer answers: %q", out)
			}
		})
	}
	if after := archiveState(t, f.db); after != before {
		t.Errorf("archive changed: %s -> %s", before, after)
	}
}
