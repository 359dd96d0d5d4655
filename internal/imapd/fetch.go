package imapd

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

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
	Article  int64     `db:"article"`
	Size     int64     `db:"size"`
	Received time.Time `db:"received_at"`
	Raw      []byte    `db:"raw"`  // whole message, or empty
	Meta     []byte    `db:"imap"` // stored imapmeta form; NULL when not derived yet
}

// meta returns the message's ENVELOPE and BODYSTRUCTURE: the stored form
// when there is one of this version, else computed from the raw bytes
// (load fetched them for that case).
func (r *row) meta() imapmeta.Meta {
	if r.Meta != nil {
		if m, err := imapmeta.Decode(r.Meta); err == nil {
			return m
		}
	}
	return imapmeta.Compute(r.Raw)
}

func (s *session) Fetch(w *imapserver.FetchWriter, ns imap.NumSet, o *imap.FetchOptions) error {
	if s.sel == nil {
		return errNoMailbox
	}
	needBody := len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
	needMeta := o.Envelope || o.BodyStructure != nil
	markSeen := !s.sel.readOnly && setsSeen(o)
	for _, sp := range s.sel.spans(ns) {
		for lo := sp.lo; lo <= sp.hi; {
			hi := min(sp.hi, lo+fetchBatch-1)
			var err error
			if needBody {
				hi, err = s.byteBudget(lo, hi)
			}
			var rows []row
			if err == nil {
				rows, err = s.load(lo, hi, needBody, needMeta)
			}
			if err != nil {
				s.log.Error("imap fetch", "event", "imap_error", "list", s.sel.name, "err", err)
				return errInternal
			}
			for i := range rows {
				if err := s.writeMessage(w, &rows[i], o, markSeen); err != nil {
					return err
				}
			}
			if hi == sp.hi {
				break // hi+1 could wrap at the top of uint32
			}
			lo = hi + 1
		}
	}
	return nil
}

// fetchBytes bounds the raw bytes one batch loads: a client fetching the
// bodies of many large messages gets them in turn, not all in memory.
const fetchBytes = 8 << 20

// byteBudget returns the last article from lo..hi such that the bodies of
// lo..that article fit in fetchBytes (at least lo itself).
func (s *session) byteBudget(lo, hi uint32) (uint32, error) {
	if s.sel.listID == 0 {
		return hi, nil
	}
	ctx, cancel := s.srv.ctx()
	defer cancel()
	var last int64
	err := s.srv.o.DB.GetContext(ctx, &last, `
		SELECT coalesce(max(article), $2) FROM (
			SELECT article, sum(size) OVER (ORDER BY article) AS total
			  FROM messages WHERE list_id = $1 AND article BETWEEN $2 AND $3`+yearCond(s.sel.year)+`) x
		 WHERE total <= $4`, s.sel.listID, int64(lo), int64(hi), fetchBytes)
	return uint32(last), err
}

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

// load reads articles lo..hi, with the raw message when body is set or
// when meta is and a row has no stored meta of this version.
func (s *session) load(lo, hi uint32, body, meta bool) ([]row, error) {
	if s.sel.listID == 0 {
		return []row{s.inboxRow()}, nil
	}
	ctx, cancel := s.srv.ctx()
	defer cancel()
	var rows []row
	err := s.srv.o.DB.SelectContext(ctx, &rows, `
		SELECT article, size, received_at,
		       CASE WHEN $4 OR ($5 AND NOT stored) THEN raw ELSE ''::bytea END AS raw,
		       CASE WHEN $5 AND stored THEN imap END AS imap
		  FROM (SELECT *, coalesce((imap->>'v')::int = $6, false) AS stored FROM messages
		         WHERE list_id = $1 AND article BETWEEN $2 AND $3`+yearCond(s.sel.year)+`) m
		 ORDER BY article`,
		s.sel.listID, int64(lo), int64(hi), body, meta, imapmeta.Version)
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
		meta := r.meta()
		if o.Envelope {
			m.WriteEnvelope(meta.Envelope)
		}
		if o.BodyStructure != nil {
			m.WriteBodyStructure(meta.BodyStructure)
		}
	}
	for _, bs := range o.BodySection {
		b := imapserver.ExtractBodySection(bytes.NewReader(r.Raw), bs)
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
