package nntpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
)

// Intake is where posted articles go: the same as SMTP's
// (ingest.Service), so that a post by news meets the same policy,
// moderation, idempotency, archive and delivery.
type Intake interface {
	Resolve(ctx context.Context, rcpt string, size int64) (ingest.Recipient, error)
	Accept(ctx context.Context, env ingest.Envelope) error
}

var errTooBig = errors.New("article too large")

// readArticle reads a posted article up to the line "." that follows a
// CRLF, undoing dot-stuffing. A bare LF does not end a line here, so
// "\n.\n" cannot cut an article short. Past limit bytes the rest is read
// and dropped, and errTooBig returned.
func readArticle(r *bufio.Reader, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	atStart, tooBig := true, false
	cr := false // the piece before this one of a long line ended in CR
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if atStart && len(line) > 0 && line[0] == '.' {
				line = line[1:]
			}
			tooBig = tooBig || int64(buf.Len()+len(line)) > limit
			if !tooBig {
				buf.Write(line)
			}
			atStart, cr = false, len(line) > 0 && line[len(line)-1] == '\r'
			continue
		}
		if err != nil {
			return nil, err // a missing final dot: the connection ended
		}
		crlf := bytes.HasSuffix(line, []byte("\r\n")) || len(line) == 1 && cr
		cr = false
		if atStart && crlf && len(line) == 3 && line[0] == '.' {
			if tooBig {
				return nil, errTooBig
			}
			return buf.Bytes(), nil
		}
		if atStart && line[0] == '.' {
			line = line[1:]
		}
		tooBig = tooBig || int64(buf.Len()+len(line)) > limit
		if !tooBig {
			buf.Write(line)
		}
		atStart = crlf
	}
}

// post answers POST: 340, the article, then 240 once it is committed,
// 441 with the reason when the lists' policy refuses it, 403 when it
// could not be stored (try again).
func (ss *session) post() {
	if ss.s.o.Intake == nil {
		ss.reply("440 posting not allowed")
		return
	}
	ss.reply("340 send article, end with a line holding a single dot")
	ss.w.Flush()
	data, err := readArticle(ss.r, ss.s.o.MaxArticle)
	if errors.Is(err, errTooBig) {
		ss.reply("441 article larger than %s", ingest.Size(ss.s.o.MaxArticle))
		return
	}
	if err != nil {
		return
	}
	ctx, cancel := ss.s.ctx()
	defer cancel()
	env, reason, err := ss.envelope(ctx, data)
	if err != nil {
		ss.failed(err)
		return
	}
	if reason != "" {
		ss.log.Info("nntp post refused", "event", "nntp_post_refused", "reason", reason)
		ss.reply("441 %s", reason)
		return
	}
	err = ss.s.o.Intake.Accept(ctx, env)
	var rej *ingest.Rejection
	switch {
	case errors.As(err, &rej):
		ss.reply("441 %s", rej.Msg)
	case err != nil:
		ss.log.Error("nntp post not stored", "event", "nntp_error", "err", err)
		ss.reply("403 the article could not be stored, try again later")
	default:
		ss.reply("240 article received")
	}
}

// envelope makes the intake's envelope of a posted article: one
// recipient per list its Newsgroups: names that this session may see and
// post to, and the poster. A reason is a refusal to give the poster.
func (ss *session) envelope(ctx context.Context, data []byte) (ingest.Envelope, string, error) {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return ingest.Envelope{}, "the article's header cannot be read", nil
	}
	from, err := mailaddr.Parse(firstAddress(h.Get("From")))
	switch {
	case err != nil && ss.member == "":
		return ingest.Envelope{}, "the article needs a From: address", nil
	case ss.member != "" && (err != nil || from.String() != ss.member):
		if err == nil {
			return ingest.Envelope{}, "From: must be your own address, " + ss.member, nil
		}
		data = append([]byte("From: "+ss.member+"\r\n"), data...) // set for them
		from, _ = mailaddr.Parse(ss.member)
	}
	gs, err := ss.groups()
	if err != nil {
		return ingest.Envelope{}, "", err
	}
	env := ingest.Envelope{From: from.String(), Data: data, Source: "nntp", Remote: ss.c.RemoteAddr().String()}
	for _, name := range strings.Split(h.Get("Newsgroups"), ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		for _, g := range gs {
			if g.name != name || containsList(env.Rcpts, g.list.ID) {
				continue
			}
			if reason, err := ss.mayPost(ctx, g.list, from); err != nil || reason != "" {
				return ingest.Envelope{}, reason, err
			}
			r, err := ss.s.o.Intake.Resolve(ctx, g.list.Address, int64(len(data)))
			var rej *ingest.Rejection
			if errors.As(err, &rej) {
				return ingest.Envelope{}, rej.Msg, nil
			}
			if err != nil {
				return ingest.Envelope{}, "", err
			}
			env.Rcpts = append(env.Rcpts, r)
		}
	}
	if len(env.Rcpts) == 0 {
		return ingest.Envelope{}, "no newsgroup of this server in Newsgroups:", nil
	}
	return env, "", nil
}

// mayPost says why a poster who did not log in may not post to l: only
// open lists take their posts, and never under a member's address (that
// needs the member's login).
func (ss *session) mayPost(ctx context.Context, l lists.List, from mailaddr.Address) (string, error) {
	if ss.member != "" {
		return "", nil
	}
	if l.PostPolicy != lists.PostOpen {
		return "posting to " + groupOf(l) + " needs a member's login (AUTHINFO)", nil
	}
	_, err := members.Get(ctx, ss.s.o.DB, l.ID, from.String())
	if err == nil {
		return from.String() + " is a member: log in (AUTHINFO) to post as them", nil
	}
	if errors.Is(err, members.ErrNotFound) {
		return "", nil
	}
	return "", err
}

func containsList(rs []ingest.Recipient, id int64) bool {
	for _, r := range rs {
		if r.List.ID == id {
			return true
		}
	}
	return false
}

// firstAddress is the address of a From: field ("Name <a@b>" or a@b).
func firstAddress(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	return mailmsg.Clean(v, 300)
}
