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
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := mbox.NewWriter(f)
	type past struct{ id, subject, refs string }
	var posts []past
	date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		date = date.Add(time.Duration(rng.IntN(3600)) * time.Second)
		who := names[rng.IntN(len(names))]
		from := fmt.Sprintf("%s%d@example.org", who, rng.IntN(40))
		p := past{id: fmt.Sprintf("gen-%d-%d@example.org", seed, i)}
		var h bytes.Buffer
		if len(posts) > 0 && rng.IntN(10) < 7 {
			parent := posts[len(posts)-1-rng.IntN(min(len(posts), 50))]
			p.subject = "Re: " + strings.TrimPrefix(parent.subject, "Re: ")
			p.refs = strings.TrimSpace(parent.refs + " <" + parent.id + ">")
			fmt.Fprintf(&h, "In-Reply-To: <%s>\r\nReferences: %s\r\n", parent.id, p.refs)
		} else {
			p.subject = fmt.Sprintf("question about %s", nouns[rng.IntN(len(nouns))])
		}
		posts = append(posts, p)
		msg := fmt.Sprintf("From: %s <%s>\r\nTo: old@lists.example.org\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n%s"+
			"List-Id: Old list <old.lists.example.org>\r\nMIME-Version: 1.0\r\n%s",
			strings.ToUpper(who[:1])+who[1:], from, p.subject, date.Format(time.RFC1123Z), p.id, h.String(), body(rng))
		if err := w.Write(from, date, []byte(msg)); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func body(rng *rand.Rand) string {
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
	if rng.IntN(8) == 0 {
		return "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			text.String() + "--b1\r\nContent-Type: text/x-diff; name=fix.patch\r\n\r\n--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-old\r\n+new\r\n--b1--\r\n"
	}
	return "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text.String()
}
