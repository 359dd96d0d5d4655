package imapd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/parley-list/parley/internal/lists"
)

// TestSearchDecodedText: SEARCH BODY and TEXT find words a reader sees,
// whatever the transfer encoding and charset the post was sent in
// (testdata/search: quoted-printable and base64, UTF-8, Latin-1, KOI8-R,
// Shift_JIS, ISO-2022-JP, EUC-KR, GB2312, windows-1252 undeclared, HTML
// only, nested multiparts, a forwarded message), case-insensitively in
// every script, with SEARCH CHARSET UTF-8; markup, scripts and attachments
// that are not text are not searched. Before, SEARCH matched the raw
// encoded bytes and found none of these words.
func TestSearchDecodedText(t *testing.T) {
	f := newFixture(t)
	l := createList(t, f.db, "libraries@lists.example.org", lists.Settings{})
	files, err := filepath.Glob("../../testdata/search/*.eml")
	if err != nil || len(files) < 13 {
		t.Fatalf("search corpus: %d files, %v", len(files), err)
	}
	sort.Strings(files)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		archiveRaw(t, f.db, l.ID, raw)
	}
	c := dial(t, f, &imapclient.Options{})
	c.Login("anonymous", "").Wait()
	if _, err := c.Select("libraries@lists.example.org", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		needle string
		body   bool
		want   string
	}{
		{"Médiathèque", true, "[1]"},
		{"BIBLIOTHÈQUE", true, "[2]"},
		{"БИБЛИОТЕКА", true, "[3]"},
		{"図書館", true, "[4]"},
		{"message", true, "[5]"},
		{"閲覧室", true, "[6]"},
		{"départementales", true, "[7]"},
		{"Stadtbücherei", true, "[8]"},
		{"zzscriptword", true, "[]"},
		{"βιβλιοθήκη", true, "[9]"},
		{"htmlonlyword", true, "[]"},
		{"Zeitschriftenlesesaal", true, "[10]"},
		{"pdfonlyword", true, "[]"},
		{"Knihovna v Brně", true, "[11]"},
		{"도서관은", true, "[12]"},
		{"图书馆", true, "[13]"},
		{"Brně", false, "[11]"},
		{"reader7@example.org", false, "[7]"},
		{"reader7@example.org", true, "[]"},
	}
	for _, tt := range tests {
		crit := imap.SearchCriteria{Text: []string{tt.needle}}
		if tt.body {
			crit = imap.SearchCriteria{Body: []string{tt.needle}}
		}
		d, err := c.UIDSearch(&crit, &imap.SearchOptions{}).Wait()
		if err != nil {
			t.Errorf("%q: %v", tt.needle, err)
			continue
		}
		if got := fmt.Sprint(d.AllUIDs()); got != tt.want {
			t.Errorf("SEARCH %s %q = %s, want %s", map[bool]string{true: "BODY", false: "TEXT"}[tt.body], tt.needle, got, tt.want)
		}
	}
}
