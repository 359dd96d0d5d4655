package imapd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/imapmeta"
)

// fetchBatch is how many messages one query loads: a FETCH 1:* over a
// 100,000-message list is streamed, never held in memory whole.
const fetchBatch = 200

// span is a closed range of article numbers.
type span struct{ lo, hi uint32 }

// spans turns a sequence or UID set into the UID ranges it names among
// the messages the client knows about. In a whole list's mailbox
// sequence number and UID are the same (articles are numbered without gaps
// and never removed); in a year view a range of sequence numbers becomes
// the range between their UIDs, which may hold other years' articles:
// queries add the view's condition.
func (sel *selected) spans(ns imap.NumSet) []span {
	if imap.IsSearchRes(ns) {
		// "$" (SEARCHRES): the UIDs the last SEARCH ... RETURN (SAVE) found.
		ns = sel.saved
	}
	var out []span
	add := func(lo, hi, max uint32, conv func(uint32) uint32) {
		if lo == 0 {
			lo = max
		}
		if hi == 0 {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		hi = min(hi, max)
		if lo >= 1 && lo <= hi {
			out = append(out, span{conv(lo), conv(hi)})
		}
	}
	switch ns := ns.(type) {
	case imap.SeqSet:
		for _, r := range ns {
			add(r.Start, r.Stop, sel.count(), sel.uidOf)
		}
	case imap.UIDSet:
		for _, r := range ns {
			add(uint32(r.Start), uint32(r.Stop), sel.maxUID(), func(u uint32) uint32 { return u })
		}
	}
	return out
}

// row is what one FETCH needs of a message.
type row struct {
	Article  int64           `db:"article"`
	Size     int64           `db:"size"`
	Received time.Time       `db:"received_at"`
	Raw      db.EscapedBytea `db:"raw"`  // whole message, or empty
	Meta     db.EscapedBytea `db:"imap"` // stored imapmeta form; NULL when not derived yet
}

// meta returns the message's ENVELOPE and BODYSTRUCTURE: the stored form
// when there is one of this version, else computed from the raw bytes
// (load fetched them for that case; a stored form that does not decode
// needs them fetched now).
func (s *session) meta(r *row, bodyStructure bool) imapmeta.Meta {
	if r.Meta == nil {
		return imapmeta.Compute(r.Raw)
	}
	m, err := imapmeta.Decode(r.Meta, bodyStructure)
	if err == nil {
		return m
	}
	s.log.Warn("stored IMAP meta does not decode; computing it", "event", "imap_meta_bad", "list", s.sel.name, "article", r.Article, "err", err)
	if len(r.Raw) == 0 {
		rows, err := s.load(context.Background(), uint32(r.Article), uint32(r.Article), query{body: true, budget: 1})
		if err != nil || len(rows) == 0 {
			return imapmeta.Meta{Envelope: &imap.Envelope{}, BodyStructure: imapmeta.Sanitize(nil)}
		}
		r.Raw = rows[0].Raw
	}
	return imapmeta.Compute(r.Raw)
}

func (s *session) Fetch(w *imapserver.FetchWriter, ns imap.NumSet, o *imap.FetchOptions) error {
	if s.sel == nil {
		return errNoMailbox
	}
	defer s.srv.o.Metrics.timed("fetch", time.Now())
	q := query{body: len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0,
		meta: o.Envelope || o.BodyStructure != nil, budget: fetchBytes}
	markSeen := !s.sel.readOnly && setsSeen(o)
	spans := s.sel.spans(ns)
	if q.body && len(spans) == 1 && spans[0].lo == spans[0].hi {
		// One message's body: what mbsync and many clients ask for, one
		// command per message. Read ahead, so the next ones need no query.
		r, err := s.readAhead(spans[0].lo)
		if err != nil || r == nil {
			return err
		}
		return s.writeMessage(w, r, o, markSeen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	batches := s.batches(ctx, spans, q)
	defer func() {
		cancel()            // a FETCH that ends early stops the loader,
		for range batches { // which closes the channel when it sees that
		}
	}()
	for b := range batches {
		if b.err != nil {
			s.log.Error("imap fetch", "event", "imap_error", "list", s.sel.name, "err", b.err)
			return errInternal
		}
		for i := range b.rows {
			if err := s.writeMessage(w, &b.rows[i], o, markSeen); err != nil {
				return err
			}
		}
	}
	return nil
}

// query says what a FETCH loads of each message.
type query struct {
	body, meta bool
	budget     int64 // raw bytes per batch (when body)
}

// batch is one load's result.
type batch struct {
	rows []row
	err  error
}

// batches loads the spans' messages batch by batch, one batch ahead of
// the writer: the database works on the next batch while this one goes
// to the client. At most two batches are held besides the one loading.
func (s *session) batches(ctx context.Context, spans []span, q query) <-chan batch {
	ch := make(chan batch, 1)
	go func() {
		defer close(ch)
		for _, sp := range spans {
			for lo := uint64(sp.lo); lo <= uint64(sp.hi); {
				hi := min(uint64(sp.hi), lo+fetchBatch-1)
				rows, err := s.load(ctx, uint32(lo), uint32(hi), q)
				select {
				case ch <- batch{rows, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
				if q.body && len(rows) > 0 {
					hi = min(hi, uint64(rows[len(rows)-1].Article)) // the byte budget may have cut the batch short
				}
				lo = hi + 1
			}
		}
	}()
	return ch
}

// readAhead returns message uid with its body, from the messages read
// ahead by an earlier single-message FETCH, or loads uid and the ones
// after it (up to readAheadBytes). nil: uid is not in the mailbox.
func (s *session) readAhead(uid uint32) (*row, error) {
	if r := s.sel.ahead.get(uid); r != nil {
		return r, nil
	}
	s.sel.ahead = nil // the old batch is freed before the next is loaded
	hi := min(uint64(uid)+readAheadCount-1, uint64(s.sel.maxUID()))
	rows, err := s.load(context.Background(), uid, uint32(max(hi, uint64(uid))), query{body: true, meta: true, budget: readAheadBytes})
	if err != nil {
		s.log.Error("imap fetch", "event", "imap_error", "list", s.sel.name, "err", err)
		return nil, errInternal
	}
	s.sel.ahead = rows
	return s.sel.ahead.get(uid), nil
}

// Read-ahead for single-message fetches: small enough that a thousand
// sessions reading this way hold a gigabyte at most.
const (
	readAheadCount = 64
	readAheadBytes = 1 << 20
)

// aheadRows are read-ahead messages in article order.
type aheadRows []row

func (a aheadRows) get(uid uint32) *row {
	i := sort.Search(len(a), func(i int) bool { return a[i].Article >= int64(uid) })
	if i < len(a) && a[i].Article == int64(uid) {
		return &a[i]
	}
	return nil
}

// fetchBytes bounds the raw bytes one batch loads: a client fetching the
// bodies of many large messages gets them in turn, not all in memory.
const fetchBytes = 4 << 20

// setsSeen reports whether the FETCH reads a body section without PEEK,
// which sets \Seen (RFC 3501 6.4.5).
func setsSeen(o *imap.FetchOptions) bool {
	for _, bs := range o.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// load reads the messages of the selected mailbox among articles lo..hi,
// with the raw message when q.body is set, or when q.meta is and a row
// has no stored meta of this version. With q.body the batch stops after
// the message that takes it past q.budget bytes (the first one always
// comes), so large messages are loaded a few at a time.
func (s *session) load(ctx context.Context, lo, hi uint32, q query) ([]row, error) {
	if s.sel.listID == 0 {
		return []row{s.inboxRow()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.srv.o.QueryTimeout)
	defer cancel()
	budget := int64(math.MaxInt64)
	if q.body {
		budget = q.budget
	}
	var rows []row
	err := s.srv.o.DB.SelectContext(ctx, &rows, `
		SELECT article, size, received_at,
		       CASE WHEN $4 OR ($5 AND NOT stored) THEN encode(raw, 'escape') ELSE '' END AS raw,
		       CASE WHEN $5 AND stored THEN encode(imap, 'escape') END AS imap
		  FROM (SELECT *, coalesce(substring(imap FROM 1 FOR 1) BETWEEN $8 AND $6, false) AS stored,
		               sum(size) OVER (ORDER BY article) - size AS before
		          FROM messages
		         WHERE list_id = $1 AND article BETWEEN $2 AND $3`+yearCond(s.sel.year)+`) m
		 WHERE before < $7
		 ORDER BY article`,
		s.sel.listID, int64(lo), int64(hi), q.body, q.meta, []byte{imapmeta.Version}, budget, []byte{imapmeta.MinVersion})
	return rows, err
}

// writeMessage writes one FETCH response. Everything it needs is already
// loaded: the response holds the connection's write lock until Close.
func (s *session) writeMessage(w *imapserver.FetchWriter, r *row, o *imap.FetchOptions, markSeen bool) error {
	uid := uint32(r.Article)
	seq := s.sel.seqOf(uid)
	if seq == 0 {
		return nil // not in the client's view (cannot happen: queries are restricted)
	}
	for _, bs := range o.BinarySection {
		if err := knownCTE(r.Raw, bs.Part); err != nil {
			return err
		}
	}
	for _, bs := range o.BinarySectionSize {
		if err := knownCTE(r.Raw, bs.Part); err != nil {
			return err
		}
	}
	if markSeen {
		s.sel.setFlags(uid, imap.StoreFlagsAdd, []imap.Flag{imap.FlagSeen})
	}
	m := w.CreateMessage(seq)
	if o.UID {
		m.WriteUID(imap.UID(uid))
	}
	if o.Flags || markSeen {
		m.WriteFlags(s.sel.flagsOf(uid))
	}
	if o.RFC822Size {
		m.WriteRFC822Size(r.Size)
	}
	if o.InternalDate {
		m.WriteInternalDate(r.Received)
	}
	if o.Envelope || o.BodyStructure != nil {
		meta := s.meta(r, o.BodyStructure != nil)
		switch {
		case !o.Envelope:
		case meta.EnvelopeWire != nil:
			m.WriteEnvelopeRaw(meta.EnvelopeWire) // encoded once, when archived
		default:
			m.WriteEnvelope(meta.Envelope)
		}
		if o.BodyStructure != nil {
			m.WriteBodyStructure(meta.BodyStructure)
		}
	}
	for _, bs := range o.BodySection {
		b := bodySection(r.Raw, bs)
		if err := writeLiteral(m.WriteBodySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bs := range o.BinarySection {
		b := imapserver.ExtractBinarySection(bytes.NewReader(r.Raw), bs)
		if err := writeLiteral(m.WriteBinarySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bs := range o.BinarySectionSize {
		m.WriteBinarySectionSize(bs, imapserver.ExtractBinarySectionSize(bytes.NewReader(r.Raw), bs))
	}
	return m.Close()
}

// bodySection returns a BODY[section]<partial>. The whole message is the
// stored bytes as they are (the common case, and the largest: no parsing);
// everything else is the library's.
func bodySection(raw []byte, bs *imap.FetchItemBodySection) []byte {
	if len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierNone {
		return imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
	}
	if p := bs.Partial; p != nil {
		if p.Offset >= int64(len(raw)) || p.Offset < 0 {
			return nil
		}
		raw = raw[p.Offset:]
		if p.Size >= 0 && p.Size < int64(len(raw)) {
			raw = raw[:p.Size]
		}
	}
	return raw
}

var errUnknownCTE = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
	Text: "The part's Content-Transfer-Encoding is unknown; fetch it with BODY[] instead"}

// knownCTE refuses BINARY for a part whose transfer encoding the server
// cannot decode (RFC 3516 4.3), instead of answering with empty data.
func knownCTE(raw []byte, part []int) error {
	spec := imap.PartSpecifierHeader
	if len(part) > 0 {
		spec = imap.PartSpecifierMIME
	}
	h := imapserver.ExtractBodySection(bytes.NewReader(raw), &imap.FetchItemBodySection{Part: part, Specifier: spec})
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(h)))
	if err != nil {
		return nil // no header to speak of: nothing to decode
	}
	switch strings.ToLower(strings.TrimSpace(th.Get("Content-Transfer-Encoding"))) {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
		return nil
	}
	return errUnknownCTE
}

func writeLiteral(wc interface {
	Write([]byte) (int, error)
	Close() error
}, b []byte) error {
	if _, err := wc.Write(b); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}

func (sel *selected) flagsOf(uid uint32) []imap.Flag {
	if f := sel.flags[uid]; f != nil {
		return f
	}
	return []imap.Flag{}
}

// maxSessionFlags bounds the flags a session remembers: they are the
// session's only (the archive is read-only), and a client must not grow
// them without limit.
const maxSessionFlags = 1 << 20

func (sel *selected) setFlags(uid uint32, op imap.StoreFlagsOp, flags []imap.Flag) {
	cur := sel.flags[uid]
	var next []imap.Flag
	switch op {
	case imap.StoreFlagsSet:
		next = append(next, flags...)
	case imap.StoreFlagsAdd:
		next = append(next, cur...)
		for _, f := range flags {
			if !hasFlag(next, f) {
				next = append(next, f)
			}
		}
	case imap.StoreFlagsDel:
		for _, f := range cur {
			if !hasFlag(flags, f) {
				next = append(next, f)
			}
		}
	}
	if len(next) == 0 {
		delete(sel.flags, uid)
		return
	}
	if _, ok := sel.flags[uid]; !ok && len(sel.flags) >= maxSessionFlags {
		return
	}
	sel.flags[uid] = next
}

func hasFlag(fs []imap.Flag, f imap.Flag) bool {
	for _, g := range fs {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// Store changes flags in this session only; PERMANENTFLAGS is empty, so
// clients keep their own.
func (s *session) Store(w *imapserver.FetchWriter, ns imap.NumSet, flags *imap.StoreFlags, o *imap.StoreOptions) error {
	if s.sel == nil {
		return errNoMailbox
	}
	if s.sel.readOnly {
		return errReadOnly
	}
	_, isUID := ns.(imap.UIDSet)
	return s.sel.each(s.sel.spans(ns), func(uid, seq uint32) error {
		s.sel.setFlags(uid, flags.Op, flags.Flags)
		if flags.Silent {
			return nil
		}
		m := w.CreateMessage(seq)
		if isUID {
			m.WriteUID(imap.UID(uid))
		}
		m.WriteFlags(s.sel.flagsOf(uid))
		return m.Close()
	})
}

// inboxRow is INBOX's one message.
func (s *session) inboxRow() row {
	raw := []byte(fmt.Sprintf("From: parley <postmaster@invalid>\r\n"+
		"Subject: About this server\r\n"+
		"Date: %s\r\n"+
		"Message-ID: <about@parley.invalid>\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"This is a parley mailing-list archive, served read-only.\r\n\r\n"+
		"Every list you may read is a mailbox named by its address\r\n"+
		"(for example dev@lists.example.org). Open it to read and search\r\n"+
		"the list's whole history; new posts appear as they arrive.\r\n\r\n"+
		"Nothing here can be changed: flags you set are kept by your\r\n"+
		"client, not by the server.\r\n",
		time.Unix(0, 0).UTC().Format(time.RFC1123Z)))
	return row{Article: 1, Size: int64(len(raw)), Received: time.Unix(0, 0).UTC(), Raw: raw}
}
