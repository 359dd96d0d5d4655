package nntpd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
)

// session is one client's conversation.
type session struct {
	s      *Server
	c      net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	log    *slog.Logger
	remote string

	group   *group // the current group, nil before GROUP
	current int64  // the current article number, 0 for none
	user    string // the AUTHINFO USER given, before PASS
	member  string // the logged-in address, "" for none
	private map[int64]bool
	tls     bool // the connection is TLS (nntps, or after STARTTLS)
	ahead   struct {
		list     int64
		articles []archive.Article
	} // read-ahead window of the current group (articles.go)
}

func (s *Server) session(c net.Conn, isTLS bool) {
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	ss := &session{s: s, c: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, 64<<10),
		log: s.o.Log.With("remote", host), remote: host, tls: isTLS}
	if s.o.Intake != nil {
		ss.reply("200 %s parley NNTP service ready, posting allowed", s.o.Hostname)
	} else {
		ss.reply("201 %s parley NNTP service ready (no posting)", s.o.Hostname)
	}
	for {
		if err := ss.w.Flush(); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(s.o.IdleTimeout))
		line, err := readLine(ss.r)
		if errors.Is(err, errLineTooLong) {
			ss.reply("501 line too long")
			continue
		}
		if err != nil {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Minute))
		if quit := ss.command(line); quit {
			ss.w.Flush()
			return
		}
	}
}

// reply writes one status line.
func (ss *session) reply(format string, args ...any) {
	fmt.Fprintf(ss.w, format+"\r\n", args...)
}

// command runs one command line and reports whether the session ends.
func (ss *session) command(line string) bool {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		ss.reply("500 empty command")
		return false
	}
	verb, args := strings.ToUpper(fields[0]), fields[1:]
	switch verb {
	case "QUIT":
		ss.reply("205 bye")
		return true
	case "CAPABILITIES":
		ss.capabilities()
	case "MODE":
		switch {
		case len(args) != 1 || !strings.EqualFold(args[0], "READER"):
			ss.reply("501 only MODE READER")
		case ss.s.o.Intake != nil:
			ss.reply("200 reader mode, posting allowed")
		default:
			ss.reply("201 reader mode, posting not allowed")
		}
	case "DATE":
		ss.reply("111 %s", ss.s.o.Now().UTC().Format("20060102150405"))
	case "HELP":
		ss.reply("100 help text follows")
		ss.w.WriteString("CAPABILITIES MODE READER DATE HELP QUIT LIST GROUP LISTGROUP NEXT LAST\r\n" +
			"ARTICLE HEAD BODY STAT OVER XOVER HDR XHDR NEWGROUPS NEWNEWS AUTHINFO\r\n.\r\n")
	case "AUTHINFO":
		ss.authinfo(args)
	case "STARTTLS":
		ss.startTLS()
	case "LIST":
		ss.list(args)
	case "GROUP", "LISTGROUP":
		ss.groupCmd(verb, args)
	case "NEXT", "LAST":
		ss.move(verb == "NEXT")
	case "ARTICLE", "HEAD", "BODY", "STAT":
		ss.article(verb, args)
	case "OVER", "XOVER":
		ss.over(args)
	case "HDR", "XHDR":
		ss.hdr(args, verb == "XHDR")
	case "NEWGROUPS":
		ss.newgroups(args)
	case "NEWNEWS":
		ss.newnews(args)
	case "POST":
		ss.post()
	case "IHAVE":
		ss.reply("435 not a transit server: post with POST")
	default:
		ss.reply("500 unknown command")
	}
	return false
}

func (ss *session) capabilities() {
	ss.reply("101 capabilities")
	ss.w.WriteString("VERSION 2\r\nREADER\r\nIMPLEMENTATION parley\r\nOVER MSGID\r\nHDR\r\n" +
		"LIST ACTIVE ACTIVE.TIMES NEWSGROUPS OVERVIEW.FMT HEADERS\r\nNEWNEWS\r\n")
	if ss.s.o.Intake != nil {
		ss.w.WriteString("POST\r\n")
	}
	if ss.member == "" && ss.secure() {
		ss.w.WriteString("AUTHINFO USER\r\n")
	}
	if ss.s.o.TLS != nil && !ss.tls && ss.member == "" {
		ss.w.WriteString("STARTTLS\r\n")
	}
	ss.w.WriteString(".\r\n")
}

// secure reports whether a password may be sent on this connection: over
// TLS, or from the same machine.
func (ss *session) secure() bool {
	if ss.tls {
		return true
	}
	ip := net.ParseIP(ss.remote)
	return ip != nil && ip.IsLoopback()
}

// authinfo handles AUTHINFO USER and PASS (RFC 4643): a member's address
// and archive password open their private lists.
func (ss *session) authinfo(args []string) {
	if len(args) != 2 {
		ss.reply("501 AUTHINFO USER name, then AUTHINFO PASS password")
		return
	}
	switch {
	case ss.member != "":
		ss.reply("502 already authenticated")
	case !ss.secure():
		ss.reply("483 encryption required for passwords")
	case strings.EqualFold(args[0], "USER"):
		ss.user = args[1]
		ss.reply("381 password required")
	case strings.EqualFold(args[0], "PASS") && ss.user == "":
		ss.reply("482 AUTHINFO USER first")
	case strings.EqualFold(args[0], "PASS"):
		ss.login(args[1])
	default:
		ss.reply("501 AUTHINFO USER or PASS")
	}
}

func (ss *session) login(password string) {
	now := ss.s.o.Now()
	if ss.s.auth.Blocked(ss.remote, now) {
		ss.reply("481 too many failures, try again later")
		return
	}
	addr, err := mailaddr.Parse(ss.user)
	var ok []int64
	if err == nil {
		ctx, cancel := ss.s.ctx()
		ok, err = members.ArchiveAccess(ctx, ss.s.o.DB, addr.String(), password)
		cancel()
		if err != nil {
			ss.log.Error("nntp login lookup", "event", "nntp_error", "err", err)
			ss.reply("403 internal error, try again later")
			return
		}
	}
	ss.user = ""
	if len(ok) == 0 {
		ss.s.auth.Failed(ss.remote, now)
		time.Sleep(ss.s.auth.Delay)
		ss.log.Info("nntp login failed", "event", "nntp_login_failed")
		ss.reply("481 authentication failed")
		return
	}
	ss.member, ss.private = addr.String(), map[int64]bool{}
	for _, id := range ok {
		ss.private[id] = true
	}
	ss.log.Info("nntp login", "event", "nntp_login", "lists", len(ok))
	ss.reply("281 authentication accepted")
}

// dotted writes raw (CRLF lines) as a multi-line block: lines that begin
// with "." get another, and the block ends with "." alone.
func dotted(w *bufio.Writer, raw []byte) error {
	start := true
	for len(raw) > 0 {
		i := indexLF(raw)
		line := raw
		if i >= 0 {
			line = raw[:i+1]
		}
		if start && len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		start = i >= 0
		raw = raw[len(line):]
	}
	if !start {
		w.WriteString("\r\n")
	}
	_, err := io.WriteString(w, ".\r\n")
	return err
}

func indexLF(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// startTLS answers STARTTLS (RFC 4642): the session goes on over TLS,
// knowing nothing it knew before (no group, no login).
func (ss *session) startTLS() {
	switch {
	case ss.s.o.TLS == nil:
		ss.reply("580 TLS not available")
		return
	case ss.tls:
		ss.reply("502 already using TLS")
		return
	case ss.member != "":
		ss.reply("502 already authenticated")
		return
	}
	ss.reply("382 continue with TLS negotiation")
	if err := ss.w.Flush(); err != nil {
		return
	}
	tc := tls.Server(ss.c, ss.s.o.TLS)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		ss.log.Info("nntp TLS handshake failed", "event", "nntp_tls_failed", "err", err)
		ss.c.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	ss.c, ss.r, ss.w = tc, bufio.NewReaderSize(tc, 4096), bufio.NewWriterSize(tc, 64<<10)
	ss.tls, ss.group, ss.current, ss.user = true, nil, 0, ""
}
