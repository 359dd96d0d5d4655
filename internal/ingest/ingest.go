// Package ingest owns what happens to a message once a sender has handed
// it over: recipients are resolved when they are named (RCPT), and at the
// end of DATA the message is judged by each list's policy and archived,
// held, recorded or refused, with its outbound work queued, all in one
// transaction. Posts accepted at the same time share that transaction
// (the group commit, batch.go); archive imports take the same path
// without policy or delivery (import.go).
//
// It owns no table: it decides, and writes through the owners, in one
// transaction: archive (accepted posts and their delivery jobs),
// moderation (held, discarded and refused posts) and inbound (mail to the
// lists' service addresses).
//
// Invariants (docs/architecture.md):
//   - No 250 before commit: Accept returns nil only after the commit.
//     Any internal failure is a plain error, which the SMTP side answers
//     with 451 4.3.0; nothing is half-written because nothing is committed.
//   - Intake is idempotent: the same post again (same Message-ID and
//     content) archives nothing new and still succeeds.
//   - Refusals are decided before acceptance: an unknown list or domain is
//     refused at RCPT, a policy rejection in DATA; parley never accepts a
//     message only to bounce it later.
//
// Whether a failure is permanent is in its type: *Rejection is a 5xx with
// a text safe to show the sender; every other error is temporary.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/moderation"
)

// Rejection is a permanent refusal, answered with a 5xx reply.
type Rejection struct {
	Code     int    // 550, 552, 554, …
	Enhanced [3]int // RFC 3463 enhanced status code
	Msg      string // short and generic: no internals
}

func (r *Rejection) Error() string { return r.Msg }

func reject(code int, enh [3]int, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Enhanced: enh, Msg: fmt.Sprintf(format, args...)}
}

// Poker asks for a cross-process notification once a change is committed
// (see internal/notify).
type Poker interface {
	Poke(channel, payload string)
}

// Options configure a Service.
type Options struct {
	DB     *sqlx.DB
	Notify Poker // nil: no notifications (listeners poll)
	// Outcomes counts messages by outcome (accepted, held, discarded,
	// rejected, duplicate, stored); nil: not counted.
	Outcomes        *prometheus.CounterVec
	Logger          *slog.Logger
	Hostname        string
	Limits          mailmsg.Limits
	MaxMessageBytes int64 // server-wide; a list may set a smaller limit
	QueryTimeout    time.Duration
	Now             func() time.Time
	// Moderation holds posts the policy holds; nil: one made from these
	// options.
	Moderation *moderation.Service
	// Authors authenticates a held post's author, who is then told the
	// post awaits approval; nil: only members are told.
	Authors *AuthorCheck
}

// Service resolves recipients and accepts messages.
type Service struct {
	o         Options
	batchOnce sync.Once
	batch     *batcher // group commit for posts to one list, started on first use
	lists     listCache
}

// listTTL is how long a list looked up at RCPT time is reused. Every
// recipient of every post needs its list; lists change rarely, and a
// change (a new policy, a deleted list) reaching intake a second later is
// harmless: a post to a list deleted meanwhile fails its insert and gets
// 451. Unknown lists are never cached, so a new list works at once.
const listTTL = time.Second

type listCache struct {
	mu sync.Mutex
	m  map[string]cachedList
}

type cachedList struct {
	l       lists.List
	expires time.Time
}

func (c *listCache) get(addr string, now time.Time) (lists.List, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[addr]
	if !ok || now.After(e.expires) {
		return lists.List{}, false
	}
	return e.l, true
}

func (c *listCache) put(addr string, l lists.List, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]cachedList{} // bounded: start over rather than grow
	}
	c.m[addr] = cachedList{l: l, expires: now.Add(listTTL)}
}

// New returns a Service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.Moderation == nil {
		o.Moderation = moderation.NewService(moderation.Options{DB: o.DB, Logger: o.Logger, Hostname: o.Hostname,
			Notify: o.Notify, Now: o.Now})
	}
	return &Service{o: o}
}

// CountOutcomes starts counting outcomes in c (see Options.Outcomes).
func (s *Service) CountOutcomes(c *prometheus.CounterVec) { s.o.Outcomes = c }

// Close stops the group-commit writers; call it after the last Accept.
func (s *Service) Close() {
	if s.batch != nil {
		s.batch.close()
	}
}

func (s *Service) batcher() *batcher {
	s.batchOnce.Do(func() { s.batch = newBatcher(s.o.DB, 4, s.o.QueryTimeout) })
	return s.batch
}

// poke sends a notification if a notifier is configured.
func (s *Service) poke(channel, payload string) {
	if s.o.Notify != nil {
		s.o.Notify.Poke(channel, payload)
	}
}

// NewOutcomes returns the counter for Options.Outcomes.
func NewOutcomes() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_intake_messages_total",
		Help: "Messages handed over for a list, by what happened to them.",
	}, []string{"outcome"})
}

// Recipient is a resolved RCPT TO address.
type Recipient struct {
	Address string // normalised
	Route   mailaddr.Route
	List    lists.List
}

// Resolve classifies a recipient when the sender names it. size is the
// SIZE the sender declared (0 when unknown).
func (s *Service) Resolve(ctx context.Context, rcpt string, size int64) (Recipient, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	a, err := mailaddr.Parse(rcpt)
	if err != nil {
		return Recipient{}, reject(501, [3]int{5, 1, 3}, "bad recipient address syntax")
	}
	// The common case, a known list, costs one query; the domain is only
	// looked at to tell "no such list" from "not our domain".
	route, ok := mailaddr.Classify(a.Local)
	var l lists.List
	if ok {
		addr := route.List + "@" + a.Domain
		var hit bool
		if l, hit = s.lists.get(addr, s.o.Now()); !hit {
			l, err = lists.Get(ctx, s.o.DB, addr)
			if err != nil && !errors.Is(err, lists.ErrNotFound) {
				return Recipient{}, fmt.Errorf("resolve: %w", err)
			}
			if err == nil {
				s.lists.put(addr, l, s.o.Now())
			}
		}
	}
	if !ok || err != nil {
		served, err := lists.DomainServed(ctx, s.o.DB, a.Domain)
		if err != nil {
			return Recipient{}, fmt.Errorf("resolve: %w", err)
		}
		if !served {
			return Recipient{}, reject(550, [3]int{5, 7, 1}, "relay access denied")
		}
		return Recipient{}, reject(550, [3]int{5, 1, 1}, "no such list")
	}
	if size > 0 && size > s.maxBytes(l) {
		return Recipient{}, tooBig(size, s.maxBytes(l), l.Address)
	}
	return Recipient{Address: a.String(), Route: route, List: l}, nil
}

func (s *Service) maxBytes(l lists.List) int64 {
	if l.MaxMessage > 0 && (s.o.MaxMessageBytes <= 0 || l.MaxMessage < s.o.MaxMessageBytes) {
		return l.MaxMessage
	}
	if s.o.MaxMessageBytes <= 0 {
		return 1 << 62
	}
	return s.o.MaxMessageBytes
}

// Envelope is a message as the sender handed it over.
type Envelope struct {
	From   string // MAIL FROM, "" for the null sender
	Rcpts  []Recipient
	Data   []byte // as received; line endings are canonicalised here
	Source string // "smtp", "lmtp" or "nntp"
	Remote string // client address, for logs
}

// prepared is a message checked and parsed, ready for the transaction.
type prepared struct {
	raw      []byte
	sum      *mailmsg.Summary
	mailFrom string           // the envelope sender
	derived  *archive.Derived // computed here, in the session's goroutine, not in the group commit's writer
}

// prepare canonicalises line endings, parses the message and records in
// the bytes themselves what the archive adds: a synthesised Message-ID, so
// members and readers see the id the archive uses (the original, invalid
// one renamed X-Original-Message-ID, so there is exactly one); and, for
// mail received over SMTP or LMTP, a Received: trace field, and a Date:
// (the arrival time) when the message has none, as RFC 5322 requires.
func (s *Service) prepare(env Envelope) (*prepared, error) {
	raw := mailmsg.Canonicalize(env.Data)
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		// Every archived message ends its last line, so exports and
		// re-imports reproduce it byte for byte.
		raw = append(raw[:len(raw):len(raw)], '\r', '\n')
	}
	for _, r := range env.Rcpts {
		if int64(len(raw)) > s.maxBytes(r.List) {
			return nil, tooBig(int64(len(raw)), s.maxBytes(r.List), r.List.Address)
		}
	}
	sum, err := mailmsg.Parse(raw, s.o.Hostname, s.o.Limits)
	var pe *mailmsg.Error
	if errors.As(err, &pe) {
		if pe.Kind == mailmsg.HeaderTooLarge {
			return nil, reject(552, [3]int{5, 3, 4}, "%s", pe.Msg)
		}
		return nil, reject(554, [3]int{5, 6, 0}, "%s", pe.Msg)
	}
	if err != nil {
		return nil, err
	}
	var top []byte
	if env.Source == "smtp" || env.Source == "lmtp" || env.Source == "nntp" {
		top = s.trace(env, sum, raw[:sum.HeaderLen])
	}
	if sum.Synthesised {
		var grew int
		raw, grew = renameField(raw, sum.HeaderLen, "Message-ID", "X-Original-Message-ID")
		sum.HeaderLen += grew
		top = append(top, "Message-ID: <"+sum.MessageID+">\r\n"...)
	}
	if len(top) > 0 {
		raw = append(top, raw...)
		sum.HeaderLen += len(top)
	}
	derived, err := archive.Derive(raw)
	if err != nil {
		return nil, err
	}
	return &prepared{raw: raw, sum: sum, mailFrom: env.From, derived: derived}, nil
}

// trace returns the fields parley adds on top of a message it accepts:
// its Received: line, and a Date: with the arrival time when the header
// has none (the summary's date becomes it too).
func (s *Service) trace(env Envelope, sum *mailmsg.Summary, header []byte) []byte {
	now := s.o.Now()
	proto := map[string]string{"smtp": "ESMTP", "lmtp": "LMTP", "nntp": "NNTP"}[env.Source]
	from := "unknown"
	if host, _, err := net.SplitHostPort(env.Remote); err == nil {
		from = "[" + host + "]"
	}
	b := fmt.Appendf(nil, "Received: from %s\r\n\tby %s (parley) with %s;\r\n\t%s\r\n", from,
		mailmsg.Clean(s.o.Hostname, 200), proto, now.Format(time.RFC1123Z))
	if !hasField(header, "Date") {
		b = fmt.Appendf(b, "Date: %s\r\n", now.Format(time.RFC1123Z))
		sum.Date = &now
	}
	return b
}

// hasField reports whether a header block has a field named name.
func hasField(header []byte, name string) bool {
	for _, line := range bytes.Split(header, []byte("\r\n")) {
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimRight(k, " \t"), []byte(name)) {
			return true
		}
	}
	return false
}

// renameField gives every field called name in the first hlen bytes of raw
// the name to instead, and returns the new bytes and how much the header
// grew.
func renameField(raw []byte, hlen int, name, to string) ([]byte, int) {
	var out bytes.Buffer
	header := raw[:hlen]
	for len(header) > 0 {
		line := header
		if i := bytes.Index(header, []byte("\r\n")); i >= 0 {
			line, header = header[:i+2], header[i+2:]
		} else {
			header = nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimRight(k, " \t"), []byte(name)) {
			out.WriteString(to)
			out.WriteByte(':')
			out.Write(v)
			continue
		}
		out.Write(line)
	}
	grew := out.Len() - hlen
	out.Write(raw[hlen:])
	return out.Bytes(), grew
}

// tooBig is the refusal of a message larger than a list takes, saying
// both sizes, as a person can act on it.
func tooBig(size, limit int64, list string) *Rejection {
	return reject(552, [3]int{5, 3, 4}, "message of %s is larger than the limit of %s for %s", Size(size), Size(limit), list)
}

// Size says a message size as people read it: "31 KB", "2.5 MB".
func Size(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MB"
}
