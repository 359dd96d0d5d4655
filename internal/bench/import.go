package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/mbox"
)

// importRate: messages/s for `parley archive import` of a generated mbox.
func (b *runner) importRate(ctx context.Context) error {
	path := filepath.Join(b.o.WorkDir, "import.mbox")
	size, err := GenerateMbox(path, b.o.ImportCount, 1)
	if err != nil {
		return err
	}
	s, err := b.startServer(ctx, "import")
	if err != nil {
		return err
	}
	defer s.stop()
	const list = "old@lists.example.org"
	if _, err := s.cli(ctx, nil, "list", "create", list); err != nil {
		return err
	}
	start := time.Now()
	out, err := s.cli(ctx, nil, "archive", "import", list, path)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	b.logf("import: %d messages, %.1f MB: %s in %s", b.o.ImportCount, float64(size)/1e6, strings.TrimSpace(out), elapsed.Round(time.Millisecond))
	b.report("import_rate", float64(b.o.ImportCount)/elapsed.Seconds(), "messages/s")
	return nil
}

var (
	words = strings.Fields(`the a to of and in is it that for on with as this be are not we at by from or an have
		list server patch review build release thread reply archive mailbox queue delivery latency throughput
		subscriber moderator digest bounce header body encoding charset multipart attachment kernel driver
		memory allocation lock mutex channel goroutine buffer socket timeout retry backoff index search query
		database transaction commit rollback schema migration config option default value error warning`)
	nouns = []string{"queue runner", "bounce handling", "digest sender", "archive indexer", "IMAP export",
		"SMTP client", "DKIM signing", "subscriber import", "moderation queue", "MIME parser", "thread view"}
	names = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
)

// GenerateMbox writes a deterministic archive of n list posts to path as
// mboxrd: realistic headers, about 70% replies with In-Reply-To and
// References, 2-4 KB bodies with quoting, some multipart. It returns the
// file size.
func GenerateMbox(path string, n int, seed uint64) (int64, error) {
	res, err := generateMbox(path, n, seed, genOptions{list: "old@lists.example.org"})
	return res.size, err
}

// genOptions vary the generated archive.
type genOptions struct {
	list string // the list's address, in To and List-Id
	// word, when set, makes the IMAP archive, shaped like the archive the
	// peers were measured on (docs/performance.md): word goes into the
	// body of about 1% of the posts, posts carry the headers delivery adds
	// (Return-Path, Received, Cc, List-Post...) and about 5% are
	// multipart/alternative. Unset, the output is import_rate's mbox,
	// unchanged byte for byte.
	word string
}

// genResult describes a generated archive.
type genResult struct {
	size     int64 // bytes in the mbox file
	wordMsgs int   // posts with genOptions.word in their body
}

func generateMbox(path string, n int, seed uint64, o genOptions) (genResult, error) {
	var res genResult
	f, err := os.Create(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	// Posts come every half hour on average from 2010: 200,000 of them
	// still end in the past, where a news server wants them (INN refuses
	// an article dated more than a day ahead).
	g := &generator{o: o, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		date: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)}
	w := mbox.NewWriter(f)
	for i := range n {
		from, msg, hasWord := g.post(i)
		if hasWord {
			res.wordMsgs++
		}
		if err := w.Write(from, g.date, msg); err != nil {
			return res, err
		}
	}
	if err := w.Flush(); err != nil {
		return res, err
	}
	fi, err := f.Stat()
	if err != nil {
		return res, err
	}
	res.size = fi.Size()
	return res, nil
}

// generator makes the posts of one archive, in order.
type generator struct {
	o     genOptions
	seed  uint64
	rng   *rand.Rand
	date  time.Time
	posts []past
}

type past struct{ id, subject, refs string }

// post returns the envelope sender and the text of post i, and whether
// the word is in its body.
func (g *generator) post(i int) (string, []byte, bool) {
	rng := g.rng
	g.date = g.date.Add(time.Duration(rng.IntN(3600)) * time.Second)
	who := names[rng.IntN(len(names))]
	from := fmt.Sprintf("%s%d@example.org", who, rng.IntN(40))
	p := past{id: fmt.Sprintf("gen-%d-%d@example.org", g.seed, i)}
	var h bytes.Buffer
	if len(g.posts) > 0 && rng.IntN(10) < 7 {
		parent := g.posts[len(g.posts)-1-rng.IntN(min(len(g.posts), 50))]
		p.subject = "Re: " + strings.TrimPrefix(parent.subject, "Re: ")
		p.refs = strings.TrimSpace(parent.refs + " <" + parent.id + ">")
		fmt.Fprintf(&h, "In-Reply-To: <%s>\r\nReferences: %s\r\n", parent.id, p.refs)
	} else {
		p.subject = fmt.Sprintf("question about %s", nouns[rng.IntN(len(nouns))])
	}
	g.posts = append(g.posts, p)
	local, domain, _ := strings.Cut(g.o.list, "@")
	listID := fmt.Sprintf("List-Id: %s%s list <%s.%s>\r\n", strings.ToUpper(local[:1]), local[1:], local, domain)
	text, hasWord := body(rng, g.o.word)
	var trace, cc, listHeaders string
	if g.o.word != "" {
		trace, cc, listHeaders = g.deliveryHeaders(i, from)
	}
	msg := fmt.Sprintf("%sFrom: %s <%s>\r\nTo: %s\r\n%sSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n%s"+
		"%s%sMIME-Version: 1.0\r\n%s", trace,
		strings.ToUpper(who[:1])+who[1:], from, g.o.list, cc, p.subject, g.date.Format(time.RFC1123Z), p.id, h.String(),
		listID, listHeaders, text)
	return from, []byte(msg), hasWord
}

// deliveryHeaders returns the headers a post picks up on its way into a
// list archive: Return-Path and Received first, Cc on 40%, List-* after
// List-Id.
func (g *generator) deliveryHeaders(i int, from string) (trace, cc, list string) {
	_, domain, _ := strings.Cut(from, "@")
	trace = fmt.Sprintf("Return-Path: <%s>\r\nReceived: from mx.%s (mx.%[2]s [192.0.2.%d])\r\n"+
		"\tby lists.example.org with ESMTPS id %08X\r\n\tfor <%s>; %s\r\n",
		from, domain, i%250+1, i, g.o.list, g.date.Format(time.RFC1123Z))
	if g.rng.IntN(10) < 4 {
		who := names[g.rng.IntN(len(names))]
		cc = fmt.Sprintf("Cc: %s <%s%d@example.net>\r\n", strings.ToUpper(who[:1])+who[1:], who, g.rng.IntN(40))
	}
	local, domain, _ := strings.Cut(g.o.list, "@")
	list = fmt.Sprintf("List-Post: <mailto:%s>\r\nList-Unsubscribe: <mailto:%s+unsubscribe@%s>\r\nPrecedence: list\r\n",
		g.o.list, local, domain)
	return trace, cc, list
}

// body returns a post's Content-Type header, blank line and body, and
// whether word (if set) was placed in it.
func body(rng *rand.Rand, word string) (string, bool) {
	var text strings.Builder
	target := 2000 + rng.IntN(2000)
	for text.Len() < target {
		if rng.IntN(6) == 0 {
			text.WriteString("> ")
		}
		for range 8 + rng.IntN(6) {
			text.WriteString(words[rng.IntN(len(words))])
			text.WriteByte(' ')
		}
		text.WriteString("\r\n")
	}
	t := text.String()
	hasWord := word != "" && rng.IntN(100) == 0
	if hasWord { // after a space, so it stays a word of its own
		at := rng.IntN(len(t) - 2)
		at += strings.IndexByte(t[at:], ' ') + 1 // every line ends in " \r\n"
		t = t[:at] + word + " " + t[at:]
	}
	if rng.IntN(8) == 0 {
		return "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			t + "--b1\r\nContent-Type: text/x-diff; name=fix.patch\r\n\r\n--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-old\r\n+new\r\n--b1--\r\n", hasWord
	}
	if word != "" && rng.IntN(19) == 0 {
		var html strings.Builder
		html.WriteString("<html><body>\r\n")
		for _, line := range strings.SplitN(t, "\r\n", 9)[:8] {
			fmt.Fprintf(&html, "<p>%s</p>\r\n", line)
		}
		html.WriteString("</body></html>\r\n")
		return "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			t + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.String() + "--alt--\r\n", hasWord
	}
	return "Content-Type: text/plain; charset=utf-8\r\n\r\n" + t, hasWord
}
