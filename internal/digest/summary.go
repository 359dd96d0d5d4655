package digest

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/mailmsg"
)

// snippetLen bounds the text a summary shows of a thread's newest post.
const snippetLen = 240

// summary returns the text of the summary digest: one entry per thread
// with posts in the issue, in the order the threads first appear: its
// subject, how many new posts and by whom, the first lines of the newest
// one, and the newest one's archive link.
func (r *renderer) summary() string {
	type thread struct {
		posts   []archive.Article
		authors []string
	}
	var order []int64
	threads := map[int64]*thread{}
	for _, p := range r.posts {
		t := threads[p.ThreadID]
		if t == nil {
			t = &thread{}
			threads[p.ThreadID] = t
			order = append(order, p.ThreadID)
		}
		t.posts = append(t.posts, p)
		if a := authorOf(p); !contains(t.authors, a) {
			t.authors = append(t.authors, a)
		}
	}
	var b strings.Builder
	b.WriteString(r.masthead() + "\n")
	fmt.Fprintf(&b, "%s in %s:\n\n", plural(len(r.posts), "new post"), plural(len(order), "thread"))
	for _, id := range order {
		t := threads[id]
		newest := t.posts[len(t.posts)-1]
		fmt.Fprintf(&b, "* %s\n  (%d new: %s)\n", subjectOf(t.posts[0]), len(t.posts), strings.Join(t.authors, ", "))
		fmt.Fprintf(&b, "  %s: %s\n", authorOf(newest), r.snippet(newest))
		fmt.Fprintf(&b, "  %s\n\n", r.link(newest))
	}
	return b.String()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// snippet is the start of what a post says itself: quoted lines, the
// "… wrote:" line before them and the signature left out, white space
// folded, cut at a word near snippetLen.
func (r *renderer) snippet(p archive.Article) string {
	if r.listed[p.Article] {
		return fmt.Sprintf("(too large for the digest: %s)", size(p.Size))
	}
	lines := strings.Split(mailmsg.Readable(p.Raw).Text, "\n")
	var words []string
	n := 0
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if line == "-- " || line == "--" {
			break
		}
		if strings.HasPrefix(t, ">") || (strings.HasSuffix(t, "wrote:") && nextQuoted(lines[i+1:])) {
			continue
		}
		for _, w := range strings.Fields(t) {
			words = append(words, w)
			n += len(w) + 1
		}
		if n > snippetLen {
			break
		}
	}
	s := strings.Join(words, " ")
	if utf8.RuneCountInString(s) <= snippetLen {
		if s == "" {
			return "(no text)"
		}
		return s
	}
	cut := []rune(s)[:snippetLen]
	if i := strings.LastIndexByte(string(cut), ' '); i > snippetLen/2 {
		return string(cut)[:i] + " …"
	}
	return string(cut) + "…"
}

// nextQuoted reports whether the next non-blank line is quoted.
func nextQuoted(lines []string) bool {
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" {
			return strings.HasPrefix(t, ">")
		}
	}
	return false
}
