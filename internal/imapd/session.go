package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
)

// inboxName is the one mailbox that is not a list: it exists because
// clients expect it, and holds one message saying what this server is.
const inboxName = "INBOX"

// anonymous is the user name (LOGIN, AUTHENTICATE PLAIN) that reads the
// public archives with any password.
const anonymous = "anonymous"

var (
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: "This archive is read-only"}
	errNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
		Text: "No such mailbox"}
	errInternal = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: "Archive temporarily unavailable, try again"}
)

// session is one IMAP connection. Commands on a connection run serially
// (the library guarantees it), so it needs no lock.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	remote string
	log    *slog.Logger

	user    string  // "" before login; anonymous or a member address
	private []int64 // private lists this user may read

	sel *selected
}

// mailbox is a list, or one year of it, as the session sees it.
type mailbox struct {
	name        string
	listID      int64 // 0 for INBOX
	year        int   // 0: the whole list; else the view of that year
	uidValidity uint32
	uidNext     uint32 // next article: the list's UIDs are 1..uidNext-1, without gaps
}

// selected is the state of the selected mailbox.
type selected struct {
	mailbox
	readOnly bool
	known    uint32                 // the list's articles up to here have been looked at
	uids     []uint32               // a year view's UIDs, in order (nil for a whole list)
	flags    map[uint32][]imap.Flag // by UID
	saved    imap.UIDSet            // the last SEARCH result saved for "$"
	ahead    aheadRows              // messages read ahead by single-message FETCHes

	news        <-chan struct{} // a token when the list may have new posts
	unsubscribe func()
	polled      time.Time // when the database was last asked for news
}

func (s *session) Close() error {
	s.srv.o.Metrics.Sessions.Dec()
	s.deselect()
	return nil
}

// deselect ends the selected mailbox's subscription to news.
func (s *session) deselect() {
	if s.sel != nil && s.sel.unsubscribe != nil {
		s.sel.unsubscribe()
	}
	s.sel = nil
}

// AuthenticateMechanisms: PLAIN (as LOGIN) and ANONYMOUS (RFC 4505, the
// public archives).
func (s *session) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, sasl.Anonymous}
}

func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed,
					Text: "Acting as another user is not supported"}
			}
			return s.Login(username, password)
		}), nil
	case sasl.Anonymous:
		return sasl.NewAnonymousServer(func(trace string) error {
			s.loggedIn(anonymous, nil)
			return nil
		}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "Unsupported mechanism: use PLAIN or ANONYMOUS"}
}

// Login accepts "anonymous" with any password (public archives) or a
// member's address with the archive password they were sent. When the
// server has TLS, a member's password is only taken over TLS (or from
// the same machine): anonymous reading needs no secret and stays open.
func (s *session) Login(username, password string) error {
	if strings.EqualFold(username, anonymous) {
		s.loggedIn(anonymous, nil)
		return nil
	}
	if s.srv.o.TLS != nil && !s.secure() {
		// Not counted against the client: no password was checked.
		s.log.Info("imap login refused", "event", "imap_auth_failed", "remote", s.remote, "reason", "tls required")
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired,
			Text: "Use STARTTLS (or the TLS port) before sending a password"}
	}
	if s.srv.auth.Blocked(s.remote, s.srv.o.Now()) {
		return s.loginFailed("rate limited")
	}
	addr, err := mailaddr.Parse(username)
	if err != nil {
		return s.loginFailed("not an address")
	}
	ctx, cancel := s.srv.ctx()
	defer cancel()
	ok, err := members.ArchiveAccess(ctx, s.srv.o.DB, addr.String(), password)
	if err != nil {
		s.log.Error("imap login lookup", "event", "imap_error", "err", err)
		return errInternal
	}
	if len(ok) == 0 {
		return s.loginFailed("wrong password or no archive password")
	}
	s.loggedIn(addr.String(), ok)
	return nil
}

// loggedIn starts the session as user, who may read the private lists
// given as well as the public ones.
func (s *session) loggedIn(user string, private []int64) {
	s.user, s.private = user, private
	mode := "member"
	if user == anonymous {
		mode = "anonymous"
	}
	s.srv.o.Metrics.Logins.WithLabelValues(mode).Inc()
	args := []any{"event", "imap_login", "mode", mode, "remote", s.remote}
	if mode == "member" {
		args = append(args, "user", user)
	}
	s.log.Info("imap login", args...)
}

// secure reports whether the connection is encrypted or local.
func (s *session) secure() bool {
	if _, ok := s.conn.NetConn().(*tls.Conn); ok {
		return true
	}
	ip := net.ParseIP(s.remote)
	return ip != nil && ip.IsLoopback()
}

// loginFailed records the failure against the client's IP and answers
// after the configured delay, so guessing is slow.
func (s *session) loginFailed(why string) error {
	s.srv.auth.Failed(s.remote, s.srv.o.Now())
	s.srv.o.Metrics.Logins.WithLabelValues("failed").Inc()
	s.log.Info("imap login failed", "event", "imap_auth_failed", "remote", s.remote, "reason", why)
	time.Sleep(s.srv.auth.Delay)
	return imapserver.ErrAuthFailed
}

func mailboxOf(n lists.Numbering) mailbox {
	return mailbox{name: n.Address, listID: n.ID, uidValidity: uint32(n.UIDValidity), uidNext: uint32(n.NextArticle)}
}

// lists returns every list mailbox this user may see, INBOX first.
func (s *session) lists(ctx context.Context) ([]mailbox, error) {
	ns, err := lists.Readable(ctx, s.srv.o.DB, s.private)
	if err != nil {
		return nil, err
	}
	out := []mailbox{{name: inboxName, uidValidity: 1, uidNext: 2}}
	for _, n := range ns {
		out = append(out, mailboxOf(n))
	}
	return out, nil
}

// lookup finds one visible mailbox by name: a list address (compared
// case-insensitively, as mail domains are) or a year of it that has posts.
func (s *session) lookup(ctx context.Context, name string) (mailbox, error) {
	if strings.EqualFold(name, inboxName) {
		return mailbox{name: inboxName, uidValidity: 1, uidNext: 2}, nil
	}
	base, year := splitYear(name)
	n, err := lists.ReadableByAddress(ctx, s.srv.o.DB, base, s.private)
	if err == nil && year != 0 {
		var ok bool
		err = s.srv.o.DB.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM messages WHERE list_id = $1`+yearCond(year)+`)`, n.ID)
		if err == nil && !ok {
			err = lists.ErrNotFound
		}
	}
	if errors.Is(err, lists.ErrNotFound) {
		return mailbox{}, errNoMailbox
	}
	if err != nil {
		s.log.Error("imap mailbox lookup", "event", "imap_error", "err", err)
		return mailbox{}, errInternal
	}
	mb := mailboxOf(n)
	if year != 0 {
		mb.year, mb.name = year, fmt.Sprintf("%s/%d", n.Address, year)
	}
	return mb, nil
}

// count returns the number of messages in mb.
func (s *session) count(ctx context.Context, mb mailbox) (uint32, error) {
	if mb.year == 0 {
		return mb.uidNext - 1, nil
	}
	var n int64
	err := s.srv.o.DB.GetContext(ctx, &n, `SELECT count(*) FROM messages WHERE list_id = $1 AND article < $2`+yearCond(mb.year),
		mb.listID, int64(mb.uidNext))
	return uint32(n), err
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	defer s.srv.o.Metrics.timed("select", time.Now())
	s.deselect() // a failed SELECT leaves nothing selected
	ctx, cancel := s.srv.ctx()
	defer cancel()
	mb, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	examine := options != nil && options.ReadOnly
	if options != nil {
		// The archive is read-only: SELECT answers [READ-ONLY] (RFC 3501
		// 6.3.1). Flags still change in the session after a SELECT (not an
		// EXAMINE), so clients that STORE \Seen as they go get OK.
		options.ReadOnly = true
	}
	sel := &selected{mailbox: mb, readOnly: examine,
		known: mb.uidNext - 1, flags: map[uint32][]imap.Flag{}}
	if mb.year != 0 {
		sel.uids = []uint32{}
		err := s.srv.o.DB.SelectContext(ctx, &sel.uids, `SELECT article FROM messages WHERE list_id = $1 AND article <= $2`+
			yearCond(mb.year)+` ORDER BY article`, mb.listID, int64(sel.known))
		if err != nil {
			s.log.Error("imap select", "event", "imap_error", "list", mb.name, "err", err)
			return nil, errInternal
		}
	}
	if mb.listID != 0 {
		sel.news, sel.unsubscribe = s.srv.hub.subscribe(mb.listID)
	}
	sel.polled = s.srv.o.Now()
	s.sel = sel
	return &imap.SelectData{
		Flags:          []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft},
		PermanentFlags: []imap.Flag{},
		NumMessages:    sel.count(),
		UIDNext:        imap.UID(mb.uidNext),
		UIDValidity:    mb.uidValidity,
	}, nil
}

func (s *session) Unselect() error {
	s.deselect()
	return nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	defer s.srv.o.Metrics.timed("list", time.Now())
	ctx, cancel := s.srv.ctx()
	defer cancel()
	mbs, years, err := s.listAll(ctx)
	if err != nil {
		s.log.Error("imap list", "event", "imap_error", "err", err)
		return errInternal
	}
	for _, mb := range mbs {
		attr := imap.MailboxAttrHasNoChildren
		if len(years[mb.listID]) > 0 {
			attr = imap.MailboxAttrHasChildren
		}
		if err := s.writeList(ctx, w, mb, attr, ref, patterns, options); err != nil {
			return err
		}
		for _, y := range years[mb.listID] {
			child := mb
			child.year, child.name = y, fmt.Sprintf("%s/%d", mb.name, y)
			if err := s.writeList(ctx, w, child, imap.MailboxAttrHasNoChildren, ref, patterns, options); err != nil {
				return err
			}
		}
	}
	return nil
}

// listAll returns the visible list mailboxes and each one's years.
func (s *session) listAll(ctx context.Context) ([]mailbox, map[int64][]int, error) {
	mbs, err := s.lists(ctx)
	if err != nil {
		return nil, nil, err
	}
	var ids []int64
	for _, mb := range mbs {
		if mb.listID != 0 {
			ids = append(ids, mb.listID)
		}
	}
	years, err := s.years(ctx, ids)
	return mbs, years, err
}

// writeList writes mb's LIST line if its name matches, with its status
// when the client asked for it (LIST-STATUS).
func (s *session) writeList(ctx context.Context, w *imapserver.ListWriter, mb mailbox, attr imap.MailboxAttr,
	ref string, patterns []string, options *imap.ListOptions) error {
	if !matchAny(mb.name, ref, patterns) {
		return nil
	}
	data := &imap.ListData{Mailbox: mb.name, Delim: '/', Attrs: []imap.MailboxAttr{attr}}
	if options != nil && options.ReturnStatus != nil {
		n, err := s.count(ctx, mb)
		if err != nil {
			s.log.Error("imap list status", "event", "imap_error", "list", mb.name, "err", err)
			return errInternal
		}
		data.Status = statusData(mb, n, options.ReturnStatus)
	}
	return w.WriteList(data)
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, '/', ref, p) {
			return true
		}
	}
	return false
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	defer s.srv.o.Metrics.timed("status", time.Now())
	ctx, cancel := s.srv.ctx()
	defer cancel()
	mb, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	n, err := s.count(ctx, mb)
	if err != nil {
		s.log.Error("imap status", "event", "imap_error", "list", mb.name, "err", err)
		return nil, errInternal
	}
	return statusData(mb, n, options), nil
}

// statusData fills every counter the client asked for: the library
// dereferences each requested pointer, so a nil one would panic.
func statusData(mb mailbox, n uint32, o *imap.StatusOptions) *imap.StatusData {
	zero := uint32(0)
	d := &imap.StatusData{Mailbox: mb.name, UIDNext: imap.UID(mb.uidNext), UIDValidity: mb.uidValidity}
	if o.NumMessages {
		d.NumMessages = &n
	}
	if o.NumUnseen {
		// Nothing is seen on the server: flags live in the client.
		d.NumUnseen = &n
	}
	if o.NumRecent {
		d.NumRecent = &zero
	}
	if o.NumDeleted {
		d.NumDeleted = &zero
	}
	if o.Size || o.DeletedStorage {
		var size, none int64
		d.Size, d.DeletedStorage = &size, &none
	}
	if o.AppendLimit {
		d.AppendLimit = &zero
	}
	return d
}

// Every command that would change the archive is refused, whatever the
// library lets through.
func (s *session) Create(string, *imap.CreateOptions) error         { return errReadOnly }
func (s *session) Delete(string) error                              { return errReadOnly }
func (s *session) Rename(string, string, *imap.RenameOptions) error { return errReadOnly }
func (s *session) Subscribe(string) error                           { return nil }
func (s *session) Unsubscribe(string) error                         { return nil }
func (s *session) Copy(imap.NumSet, string) (*imap.CopyData, error) { return nil, errReadOnly }

// Expunge refuses to remove messages marked \Deleted; with none marked
// there is nothing to do, and it succeeds: CLOSE on a SELECTed mailbox
// runs it, and must not fail.
func (s *session) Expunge(_ *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if s.sel == nil {
		return errNoMailbox
	}
	for uid, fs := range s.sel.flags {
		if hasFlag(fs, imap.FlagDeleted) && (uids == nil || uids.Contains(imap.UID(uid))) {
			return errReadOnly
		}
	}
	return nil
}

// AppendLimit bounds what an APPEND may carry before it is refused: the
// archive takes nothing, so a larger APPEND gets NO [TOOBIG] before its
// literal is asked for, instead of the server reading up to 100 MiB only
// to refuse it. Small ones are read and refused with NOPERM, the clearer
// answer; 4096 is also LITERAL-'s bound on literals sent without asking.
func (s *session) AppendLimit() uint32 { return 4096 }

func (s *session) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, errReadOnly
}

// Poll runs after every command. It asks the database for news only when
// there may be some: the list was notified (NOTIFY archive, from any
// parley process), or the poll interval has passed since the last look
// (notifications can be lost; without a listener this is all there is).
// Asking after every command would cost a query per command: mbsync sends
// one FETCH per message, a hundred thousand for a large list.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil || s.sel.listID == 0 {
		return nil
	}
	select {
	case <-s.sel.news:
		return s.pollNews(w)
	default:
	}
	if s.srv.o.Now().Sub(s.sel.polled) < s.srv.o.PollInterval {
		return nil
	}
	return s.pollNow(w)
}

// pollNews is pollNow after a notification: the hub has usually read the
// list's counter already for every session it woke.
func (s *session) pollNews(w *imapserver.UpdateWriter) error {
	next, ok := s.srv.hub.known(s.sel.listID)
	if !ok {
		return s.pollNow(w) // the hub could not read it: ask
	}
	ctx, cancel := s.srv.ctx()
	defer cancel()
	return s.announce(ctx, w, next)
}

// pollNow announces posts archived since the client last heard: one
// EXISTS per new message, because the library's trackers (and some
// clients) mishandle jumps.
func (s *session) pollNow(w *imapserver.UpdateWriter) error {
	s.sel.polled = s.srv.o.Now()
	ctx, cancel := s.srv.ctx()
	defer cancel()
	next, err := lists.NextArticle(ctx, s.srv.o.DB, s.sel.listID)
	if err != nil {
		s.log.Warn("imap poll", "event", "imap_error", "list", s.sel.name, "err", err)
		return nil // a missed poll only delays the news
	}
	s.srv.hub.learn(s.sel.listID, next)
	return s.announce(ctx, w, next)
}

// announce sends the EXISTS for articles below next the client has not
// heard of.
func (s *session) announce(ctx context.Context, w *imapserver.UpdateWriter, next int64) error {
	if s.sel.year == 0 {
		for s.sel.known < uint32(next-1) {
			s.sel.known++
			if err := w.WriteNumMessages(s.sel.known); err != nil {
				return err
			}
		}
		return nil
	}
	return s.pollView(ctx, w, uint32(next-1))
}

// pollView adds the articles in (known, last] that belong to the selected
// year view, one EXISTS each. Articles up to last are all committed: they
// are numbered in commit order.
func (s *session) pollView(ctx context.Context, w *imapserver.UpdateWriter, last uint32) error {
	if last <= s.sel.known {
		return nil
	}
	var fresh []uint32
	err := s.srv.o.DB.SelectContext(ctx, &fresh, `SELECT article FROM messages WHERE list_id = $1 AND article > $2 AND article <= $3`+
		yearCond(s.sel.year)+` ORDER BY article`, s.sel.listID, int64(s.sel.known), int64(last))
	if err != nil {
		s.log.Warn("imap poll", "event", "imap_error", "list", s.sel.name, "err", err)
		return nil
	}
	s.sel.known = last
	for _, uid := range fresh {
		s.sel.uids = append(s.sel.uids, uid)
		if err := w.WriteNumMessages(uint32(len(s.sel.uids))); err != nil {
			return err
		}
	}
	return nil
}

// Idle reports new posts until the client says DONE: when told (NOTIFY
// archive for this list) and every poll interval in case a notification
// was lost.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.sel == nil || s.sel.listID == 0 {
		<-stop
		return nil
	}
	t := time.NewTicker(s.srv.o.PollInterval)
	defer t.Stop()
	poll := s.pollNow
	for {
		if err := poll(w); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-s.sel.news:
			poll = s.pollNews
		case <-t.C:
			poll = s.pollNow
		}
	}
}
