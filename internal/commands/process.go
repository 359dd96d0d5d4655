package commands

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/inbound"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notice"
	"github.com/parley-list/parley/internal/tokens"
)

// Processor handles the mail stored for a list's service addresses.
type Processor struct {
	DB           *sqlx.DB
	Log          *slog.Logger
	Hostname     string
	TokenTTL     time.Duration // default 72h
	DailyReplies int           // automatic replies per address per day (default 10)
	Poke         func()        // wakes the delivery workers after replies are queued
	Moderator    Moderator     // decides on held posts; nil: not by email
	Archive      Access        // where members read the archive, for the welcome, info and password mails
	// Counts, when set, counts service-address mail by kind and result
	// (NewCounts).
	Counts *prometheus.CounterVec
}

// NewCounts returns the counter for Processor.Counts.
func NewCounts() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_command_mail_total",
		Help: "Mail to list service addresses processed, by kind (request, join, leave, confirm, owner) and result (answered, ignored: from a robot, forwarded: to the owners).",
	}, []string{"kind", "result"})
}

func (p *Processor) count(kind, result string) {
	if p.Counts != nil {
		p.Counts.WithLabelValues(kind, result).Inc()
	}
}

func (p *Processor) ttl() time.Duration {
	if p.TokenTTL == 0 {
		return 72 * time.Hour
	}
	return p.TokenTTL
}

// Run processes stored command mail every interval until ctx ends.
func (p *Processor) Run(ctx context.Context, interval time.Duration) error {
	return inbound.Run(ctx, interval, p.Log, "command_error", p.ProcessAll)
}

// ProcessAll handles every unprocessed message, one transaction each, and
// returns how many it handled.
func (p *Processor) ProcessAll(ctx context.Context) (int, error) {
	return inbound.Drain(ctx, p.DB, p.Log, p.processOne)
}

// processOne handles the oldest unprocessed command message and returns
// its id (0 when there was none).
func (p *Processor) processOne(ctx context.Context) (int64, error) {
	return inbound.Claim(ctx, p.DB, inbound.Commands, func(ctx context.Context, tx *sqlx.Tx, in inbound.Message) (bool, error) {
		l, err := lists.GetByID(ctx, tx, in.ListID)
		if err != nil {
			return false, err
		}
		return p.handle(ctx, tx, l, in)
	}, p.Poke)
}

// mail is what a command message says.
type mail struct {
	sender   string // who answers go to and who "me" is: From, else the envelope sender
	subject  string
	body     string // first text/plain part, bounded, without an Approved: line
	approved string // the moderator password, from Approved: (header or first body line)
	robot    bool   // auto-submitted, bulk, a bounce, or our own reply coming back
	sum      *mailmsg.Summary
	*trail
}

// trail is what handling one command mail has logged. Whatever logs a
// decision of its own (subscribed, challenge_sent, …) counts it, and the
// generic line for a command or an owner command is then left out: one
// line per decision.
type trail struct {
	log     *slog.Logger    // with the list, kind, inbound_id and msg_id
	n       int             // decision lines so far
	limited map[string]bool // addresses found over the daily limit, refused and logged once per mail
	done    map[string]bool // requests made ("subscribe ADDR"), each made once per mail
	outbox  []pending       // what the mail causes, sent by flush (outbox.go)
}

func (p *Processor) newTrail(l lists.List, in inbound.Message, sum *mailmsg.Summary) *trail {
	log := p.Log.With("list", l.Address, "kind", in.Kind, "inbound_id", in.ID)
	if sum != nil {
		log = log.With("msg_id", sum.MessageID)
	}
	return &trail{log: log, limited: map[string]bool{}, done: map[string]bool{}}
}

func (t *trail) info(msg, event string, args ...any) {
	t.n++
	t.log.Info(msg, append([]any{"event", event}, args...)...)
}

func (t *trail) warn(msg, event string, args ...any) {
	t.n++
	t.log.Warn(msg, append([]any{"event", event}, args...)...)
}

// outcome is the first line of an answer, which says what happened; the
// rest (the help text, a roster) does not belong in the log.
func outcome(res string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(res), "\n")
	return mailmsg.Clean(line, 120)
}

func (p *Processor) read(l lists.List, in inbound.Message) mail {
	m := mail{sender: in.MailFrom}
	sum, err := mailmsg.Parse(mailmsg.Canonicalize(in.Raw), p.Hostname, mailmsg.Limits{MaxHeaderBytes: len(in.Raw) + 1, MaxHeaderFields: 1 << 20})
	if err != nil {
		m.robot = true // unreadable: never answer
		return m
	}
	m.sum, m.subject = sum, sum.Subject
	if sum.From != "" {
		m.sender = sum.From
	}
	m.body = firstText(in.Raw)
	m.approved = approvedHeader(in.Raw)
	if first, rest, _ := strings.Cut(strings.TrimLeft(m.body, "\r\n"), "\n"); m.approved == "" {
		if k, v, ok := strings.Cut(first, ":"); ok && (strings.EqualFold(k, "approved") || strings.EqualFold(k, "approve")) {
			m.approved, m.body = strings.TrimSpace(v), rest
		}
	}
	own := []string{mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, ""), mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), l.Address}
	m.robot = in.MailFrom == "" || mailaddr.IsMailerDaemon(in.MailFrom) || mailaddr.IsMailerDaemon(m.sender) ||
		sum.AutoSubmitted != "" && sum.AutoSubmitted != "no" ||
		sum.Precedence == "bulk" || sum.Precedence == "junk" || sum.Precedence == "list"
	for _, x := range sum.XLoop {
		for _, o := range own {
			m.robot = m.robot || x == o
		}
	}
	return m
}

// handle runs what one message asks and queues the reply. It returns
// whether anything was queued.
func (p *Processor) handle(ctx context.Context, tx *sqlx.Tx, l lists.List, in inbound.Message) (bool, error) {
	m := p.read(l, in)
	m.trail = p.newTrail(l, in, m.sum)
	if m.robot {
		// Robots get no answer, and their mail does nothing: a vacation
		// reply to a confirmation must not confirm it.
		m.info("automatic mail to a service address ignored", "command_ignored")
		p.count(in.Kind, "ignored")
		return false, nil
	}
	if in.Kind == "owner" {
		p.count(in.Kind, "forwarded")
		return p.forwardToOwners(ctx, tx, l, m, in.Raw)
	}
	if own, err := p.ownAddress(ctx, tx, m.sender); err != nil || own {
		// Mail "from" one of our own addresses is a loop or a forgery:
		// answering it would write to ourselves.
		if own {
			m.info("mail from one of this server's own addresses ignored", "command_ignored", "from", m.sender)
			p.count(in.Kind, "ignored")
		}
		return false, err
	}
	p.count(in.Kind, "answered")
	text, _, err := p.runAll(ctx, tx, l, m, commandsIn(in, m))
	if err != nil {
		return false, err
	}
	return p.flush(ctx, tx, l, m, replySubject(mailmsg.Clean(m.subject, 200)), text)
}

// ownAddress reports whether parley answers for addr itself (a list or
// one of its service addresses, or a postmaster of a served domain).
func (p *Processor) ownAddress(ctx context.Context, tx *sqlx.Tx, addr string) (bool, error) {
	a, err := mailaddr.Parse(addr)
	if err != nil {
		return false, nil
	}
	return lists.Answers(ctx, tx, a)
}

// runAll runs a message's commands, the owner commands together, and
// returns the text of the reply and whether anything was queued. The help
// text comes once, and only when the message held no command.
func (p *Processor) runAll(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, parsed Parsed) (string, bool, error) {
	cmds := parsed.Commands
	if len(cmds) == 0 {
		m.info("no command found", "command", "from", m.sender, "result", "no command")
		text := "No command was found in your message"
		if len(parsed.Ignored) > 0 {
			text += fmt.Sprintf(" (the first line read was %q, which is not one)", parsed.Ignored[0])
		}
		return text + ".\n\n" + p.render(ctx, tx, "help", l), false, nil
	}
	var out strings.Builder
	queued := false
	var owner []Command
	for _, c := range cmds {
		if ownerCommands[c.Name] {
			owner = append(owner, c)
			continue
		}
		before := m.n
		res, q, err := p.run(ctx, tx, l, m, c)
		if err != nil {
			return "", false, err
		}
		queued = queued || q
		if res != "" { // "": the notice it sent to the sender says it all
			fmt.Fprintf(&out, "> %s\n%s\n\n", c.Line, res)
		}
		if m.n == before { // the command logged no decision of its own
			m.info("command", "command", "command", c.Name, "from", m.sender, "result", outcome(res))
		}
	}
	if len(owner) > 0 {
		res, q, err := p.ownerRequest(ctx, tx, l, m, owner)
		if err != nil {
			return "", false, err
		}
		queued = queued || q
		fmt.Fprintf(&out, "%s\n\n", res)
	}
	if n := len(parsed.Ignored); n > 0 && out.Len() > 0 {
		if n == 1 {
			out.WriteString("One line that is not a command was ignored.\n")
		} else {
			fmt.Fprintf(&out, "%d lines that are not commands were ignored.\n", n)
		}
	}
	return out.String(), queued, nil
}

// commandsIn returns the commands a message stands for: the -join,
// -leave and -confirm addresses imply theirs, whatever the message says.
func commandsIn(in inbound.Message, m mail) Parsed {
	switch in.Kind {
	case "join":
		return Parsed{Commands: []Command{{Name: "subscribe", Line: "subscribe"}}}
	case "leave":
		return Parsed{Commands: []Command{{Name: "unsubscribe", Line: "unsubscribe"}}}
	case "confirm":
		return Parsed{Commands: []Command{{Name: "confirm", Args: []string{in.Detail}, Line: "confirm"}}}
	}
	return Parse(m.subject, m.body)
}

// run executes one command and returns the text for the reply.
func (p *Processor) run(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, c Command) (string, bool, error) {
	switch c.Name {
	case "help":
		return p.render(ctx, tx, "help", l), false, nil
	case "info":
		return p.render(ctx, tx, "info", l), false, nil
	case "subscribe", "join":
		return p.request(ctx, tx, l, m, c, "subscribe")
	case "unsubscribe", "leave", "signoff":
		return p.request(ctx, tx, l, m, c, "unsubscribe")
	case "confirm":
		if len(c.Args) == 0 {
			return "confirm needs the code from the confirmation message.", false, nil
		}
		return p.confirm(ctx, tx, l, m, c.Args[0])
	case "lists":
		return p.listsText(ctx, tx, l)
	case "set":
		return p.set(ctx, tx, l, m, c)
	case "who":
		return p.who(ctx, tx, l, m)
	case "password":
		return p.set(ctx, tx, l, m, c)
	}
	return fmt.Sprintf("Unknown command %q; send \"help\" for the commands.", c.Name), false, nil
}

// request starts a subscription or unsubscription: a confirmation goes to
// the address concerned, and nothing changes until it is confirmed. An
// argument names another address; only that address is written to.
func (p *Processor) request(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, c Command, action string) (string, bool, error) {
	given, mode := requestArgs(c, m.sender)
	key := action + " " + norm(given)
	if m.done[key] {
		return "", false, nil // "subscribe" in the Subject and again in the body
	}
	m.done[key] = true
	if f := members.Delivery(mode).DigestFormat(); f != "" && !l.Digest.Offers(f) {
		return fmt.Sprintf("%s does not offer %s delivery.", l.Address, mode), false, nil
	}
	addr, err := mailaddr.Parse(given)
	if err != nil {
		return fmt.Sprintf("%q is not an address I can write to.", given), false, nil
	}
	if own, err := lists.Answers(ctx, tx, addr); err != nil || own {
		if own {
			m.info("request for one of this server's own addresses refused", "own_address_refused", "command", c.Name, "rcpt", addr.String())
		}
		return addr.String() + " is an address of this server (a list or one of its service addresses); it cannot be subscribed or unsubscribed.", false, err
	}
	_, err = members.Get(ctx, tx, l.ID, addr.String())
	isMember := err == nil
	if err != nil && !errors.Is(err, members.ErrNotFound) {
		return "", false, err
	}
	if action == "subscribe" && isMember {
		return addr.String() + " is already subscribed.", false, nil
	}
	if action == "unsubscribe" && !isMember {
		return addr.String() + " is not subscribed.", false, nil
	}
	ttl := p.ttl()
	st, err := p.challenge(ctx, tx, l, m, tokens.New{ListID: l.ID, Given: given, Address: addr, Action: action, Mode: mode, TTL: ttl},
		[]string{given}, "", func(confirm string) string {
			return fmt.Sprintf("Someone (perhaps you) asked to %s %s %s %s.\n\n"+
				"To confirm, just reply to this message, or send a message to\n  %s\n\n"+
				"If you did not ask for this, ignore this message: nothing changes.\nThe request expires in %s.\n",
				action, given, map[string]string{"subscribe": "to", "unsubscribe": "from"}[action], l.Address, confirm, human(ttl))
		})
	if err != nil || st != sent {
		return st.refusal(given), false, err
	}
	if norm(given) == norm(m.sender) {
		return "", true, nil // the confirmation itself tells the sender
	}
	return "A confirmation was sent to " + given + ". Nothing changes until it is answered.", true, nil
}

// requestArgs reads "subscribe [ADDRESS] [MODE]": an argument with an @
// (or address=ADDRESS) names the address, a delivery mode the mode; other
// words ("subscribe me please") are not addresses.
func requestArgs(c Command, sender string) (given, mode string) {
	given, mode = sender, "regular"
	for _, a := range c.Args {
		la := strings.ToLower(a)
		switch {
		case la == "regular" || la == "digest" || la == "digest-plain" || la == "summary" || la == "nomail":
			mode = la
		case strings.HasPrefix(la, "address="):
			given = a[len("address="):]
		case strings.Contains(a, "@"):
			given = strings.Trim(a, "<>,;()\"'")
		}
	}
	return given, mode
}

// confirm completes a pending request.
func (p *Processor) confirm(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, raw string) (string, bool, error) {
	t, err := tokens.Take(ctx, tx, l.ID, raw)
	if errors.Is(err, tokens.ErrTokenUsed) && t.Action == tokens.Command && strings.HasPrefix(t.Payload, "sub ") {
		// A second owner answering a subscription request: the request
		// itself says who decided it, and when.
		err = nil
	}
	var inv *errs.Invalid
	if errors.As(err, &inv) {
		return inv.Msg + ".", false, nil
	}
	if err != nil {
		return "", false, err
	}
	switch t.Action {
	case tokens.Command:
		payload := t.Payload
		if id, ok := strings.CutPrefix(payload, "sub approve "); ok {
			// "refuse REASON" in the reply refuses instead.
			if cs := Parse("", m.body).Commands; len(cs) > 0 && (cs[0].Name == "refuse" || cs[0].Name == "reject") {
				payload = "sub refuse " + id + " " + cs[0].Rest
			}
		}
		var cmds []Command
		for _, line := range strings.Split(payload, "\n") {
			if c, ok := parseLine(line); ok {
				cmds = append(cmds, c)
			}
		}
		by := "confirmed:" + t.AddressNorm
		if strings.HasPrefix(payload, "sub ") {
			// The notice went to every owner: the one who replied decided.
			by = "reply:" + norm(m.sender)
		}
		return p.runOwner(ctx, tx, l, m, by, cmds)
	case tokens.Settings:
		return p.applySetting(ctx, tx, l, m, t)
	case tokens.Held:
		id, _ := strconv.ParseInt(t.Payload, 10, 64)
		verb, reason := "approve", ""
		if cs := Parse("", m.body).Commands; len(cs) > 0 && (cs[0].Name == "reject" || cs[0].Name == "discard") {
			verb, reason = cs[0].Name, cs[0].Rest // the whole line is the reason
		}
		return p.decideHeld(ctx, l, m, verb, id, reason, "reply:"+m.sender)
	case "subscribe":
		if l.SubscribeBy == "approve" {
			return p.askOwners(ctx, tx, l, m, t)
		}
		nm, err := members.ParseNew(t.Address, members.RoleMember, members.Delivery(t.Mode))
		if err != nil {
			return "", false, err
		}
		if _, err := members.Add(ctx, tx, l.ID, []members.New{nm}); errs.IsInvalid(err) {
			return err.Error(), false, nil // say, the list stopped offering the digest asked for
		} else if err != nil {
			return "", false, err
		}
		m.info("subscribed by confirmation", "subscribed", "rcpt", t.AddressNorm)
		if err := p.tellOwners(ctx, tx, l, m, notice.Membership(l, t.Address, "joined", "confirmed by mail")); err != nil {
			return "", false, err
		}
		m.post(p.greeter().welcome(ctx, tx, l, t.Address, ""), []string{t.Address})
		// The welcome says it all: only someone who received the
		// confirmation could answer it, whatever their From: says.
		return "", true, nil
	default:
		if err := members.Remove(ctx, tx, l.ID, t.AddressNorm); err != nil && !errors.Is(err, members.ErrNotFound) {
			return "", false, err
		}
		m.info("unsubscribed by confirmation", "unsubscribed", "rcpt", t.AddressNorm, "via", "email")
		if err := p.tellOwners(ctx, tx, l, m, notice.Membership(l, t.Address, "left", "confirmed by mail")); err != nil {
			return "", false, err
		}
		return t.Address + " is unsubscribed from " + l.Address + ". Goodbye!", false, nil
	}
}

// askOwners records a confirmed subscription as a request waiting for
// the owners (parley sub ls), and mails them: replying to the notice
// approves it, replying "refuse REASON" refuses it. The request stays in
// the queue whether or not the notice could go (the daily limit).
func (p *Processor) askOwners(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, t tokens.Token) (string, bool, error) {
	owners, err := members.Owners(ctx, tx, l.ID)
	if err != nil {
		return "", false, err
	}
	if len(owners) == 0 {
		m.warn("subscription needs an owner's approval, but the list has no owner", "no_moderator", "rcpt", t.AddressNorm)
		return "This list needs an owner's approval, but it has no owner; ask " + mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "") + ".", false, nil
	}
	addr, err := mailaddr.Parse(t.AddressNorm)
	if err != nil {
		return "", false, err
	}
	r, fresh, err := members.AddRequest(ctx, tx, l.ID, addr, t.Address, members.Delivery(t.Mode))
	if err != nil {
		return "", false, err
	}
	if !fresh {
		return "Your request to join " + l.Address + " is already waiting for the owners' approval.", false, nil
	}
	m.info("subscription request waits for the owners", "sub_requested", "rcpt", t.AddressNorm, "request", r.ID)
	owner, _ := mailaddr.Parse(mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""))
	_, err = p.challenge(ctx, tx, l, m, tokens.New{ListID: l.ID, Given: owner.String(), Address: owner,
		Action: tokens.Command, Payload: fmt.Sprintf("sub approve %d", r.ID), TTL: 7 * 24 * time.Hour},
		owners, l.Address+": "+t.Address+" asks to join", func(string) string {
			return fmt.Sprintf("%s asks to join %s (request %d; the address is confirmed).\n\n"+
				"To approve, just reply to this message.\n"+
				"To refuse, reply with \"refuse\" and a reason on the first line; the reason is sent to them.\n"+
				"On the server: parley sub approve|refuse %s %d\n"+
				"Replying works for 7 days; the request waits in the queue until someone decides.\n", t.Address, l.Address, r.ID, l.Address, r.ID)
		})
	if err != nil {
		return "", false, err
	}
	return "Thank you; your request to join " + l.Address + " now waits for the approval of the list's owners.\nYou will hear from us when they decide.", true, nil
}

// challengeStatus says whether a challenge went out, and if not, why.
type challengeStatus int

const (
	sent     challengeStatus = iota
	limited                  // nobody left under the daily limit of automatic mail
	mailedTo                 // this message already mails the address
	ownRcpt                  // the address is one of this server's own
)

// refusal is the answer to the sender when a challenge to addr did not go.
func (st challengeStatus) refusal(addr string) string {
	switch st {
	case mailedTo:
		return "A message to " + addr + " already goes out for your mail; send one request at a time."
	case ownRcpt:
		return addr + " is an address of this server; nothing is sent to it."
	}
	return "Too many messages went to " + addr + " today; please try again tomorrow."
}

// challenge stores a token and puts in the outbox, for rcpts, a message
// that confirms it by an ordinary reply: its From and Reply-To are
// list-confirm+TOKEN@. subject "" means "confirm TOKEN"; text gets the
// confirmation address. Each recipient counts against the daily limit of
// automatic mail, so a stranger cannot make the list mail an address over
// and over; an address this message already mails, or one this server
// answers for, gets nothing.
func (p *Processor) challenge(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, tn tokens.New, rcpts []string, subject string, text func(confirmAddr string) string) (challengeStatus, error) {
	var to []string
	status := limited
	for _, r := range rcpts {
		if m.holds(r) {
			status = mailedTo
			continue
		}
		if own, err := p.ownAddress(ctx, tx, r); err != nil || own {
			if own {
				status = ownRcpt
				m.info("confirmation to one of this server's own addresses not sent", "own_address_refused", "rcpt", norm(r))
			}
			if err != nil {
				return status, err
			}
			continue
		}
		ok, err := p.allow(ctx, tx, m, r)
		if err != nil {
			return status, err
		}
		if ok {
			to = append(to, r)
		}
	}
	if len(to) == 0 {
		return status, nil
	}
	raw, err := tokens.Create(ctx, tx, tn)
	if err != nil {
		return status, err
	}
	confirm := mailaddr.ServiceAddr(l.Address, mailaddr.KindConfirm, raw)
	if subject == "" {
		subject = "confirm " + raw
	}
	header := to[0]
	if len(to) > 1 {
		header = mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "")
	}
	m.post(notice.Message{From: confirm, ReplyTo: confirm, To: header, Loop: mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, ""),
		Subject: subject, Text: text(confirm)}, to)
	m.info("confirmation request sent", "challenge_sent", "rcpt", header, "action", tn.Action)
	return sent, nil
}

// allow counts one automatic message to addr today and reports whether it
// is within the daily limit. An address refused once is refused again
// for the rest of the mail without being counted or logged again.
func (p *Processor) allow(ctx context.Context, tx *sqlx.Tx, m mail, addr string) (bool, error) {
	a, err := mailaddr.Parse(addr)
	if err != nil || m.limited[a.String()] {
		return false, nil
	}
	ok, err := notice.Allow(ctx, tx, a.String(), p.DailyReplies)
	if err != nil {
		return false, err
	}
	if !ok {
		// Info, not Warn: any stranger can run an address up to the
		// limit; this is the throttle doing its job.
		m.limited[a.String()] = true
		m.info("daily limit of automatic mail to this address reached", "reply_limited", "rcpt", a.String())
		return false, nil
	}
	return true, nil
}

// forwardToOwners passes mail for list-owner@ on to the owners, attached,
// marked so that it cannot loop back.
func (p *Processor) forwardToOwners(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, raw []byte) (bool, error) {
	owners, err := members.Owners(ctx, tx, l.ID)
	if err != nil {
		return false, err
	}
	if len(owners) == 0 {
		m.warn("mail for the owners dropped: the list has no owner", "no_moderator", "from", m.sender)
		return false, nil
	}
	n := notice.Message{From: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), To: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""), ReplyTo: m.sender,
		Subject: "Message for the owners of " + l.Address + ": " + mailmsg.Clean(m.subject, 200),
		Text:    "This message was sent to " + mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "") + " by " + m.sender + ".\n",
		Attach:  mailmsg.Canonicalize(raw), Loop: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "")}
	if err := notice.Queue(ctx, tx, l, owners, n.Render(p.Hostname, time.Now())); err != nil {
		return false, err
	}
	m.info("mail for the owners forwarded", "owner_forwarded", "from", m.sender)
	return true, nil
}

func (p *Processor) listsText(ctx context.Context, tx *sqlx.Tx, l lists.List) (string, bool, error) {
	public, err := lists.PublicOn(ctx, tx, l.Domain)
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	b.WriteString("Public lists here:\n")
	for _, r := range public {
		fmt.Fprintf(&b, "  %s  %s\n", r.Address, r.DisplayName)
	}
	return b.String(), false, nil
}

// approvedHeader returns the Approved: (or Approve:) header's value.
func approvedHeader(raw []byte) string {
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(mailmsg.Canonicalize(raw))))
	if err != nil {
		return ""
	}
	if v := th.Get("Approved"); v != "" {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(th.Get("Approve"))
}

// firstText returns the first text/plain part of a message, at any
// depth (mail clients send multipart/mixed around multipart/alternative
// around the text), or, when there is none, its first text/html part as
// lines of text: an HTML-only command mail is read, not ignored. The
// walk keeps an explicit stack, at most maxTextDepth multiparts deep and
// maxTextParts parts in all.
func firstText(raw []byte) string {
	br := bufio.NewReader(bytes.NewReader(mailmsg.Canonicalize(raw)))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return ""
	}
	h := message.Header{Header: th}
	t, params, _ := h.ContentType()
	switch {
	case t == "text/html":
		return mailmsg.HTMLLines(decoded(h, br))
	case !strings.HasPrefix(t, "multipart/"):
		if t != "text/plain" && t != "" {
			return ""
		}
		return decoded(h, br)
	}
	html := ""
	stack := []*textproto.MultipartReader{textproto.NewMultipartReader(br, params["boundary"])}
	for seen := 0; len(stack) > 0 && seen < maxTextParts; seen++ {
		part, err := stack[len(stack)-1].NextPart()
		if err != nil {
			stack = stack[:len(stack)-1] // this multipart is done (or broken): back to its parent
			continue
		}
		ph := message.Header{Header: part.Header}
		pt, pp, _ := ph.ContentType()
		switch {
		case pt == "text/plain":
			return decoded(ph, part)
		case pt == "text/html" && html == "":
			html = mailmsg.HTMLLines(decoded(ph, part))
		case strings.HasPrefix(pt, "multipart/") && pp["boundary"] != "" && len(stack) < maxTextDepth:
			stack = append(stack, textproto.NewMultipartReader(part, pp["boundary"]))
		}
	}
	return html
}

// Bounds of firstText's walk.
const (
	maxTextDepth = 10
	maxTextParts = 100
)

func decoded(h message.Header, r io.Reader) string {
	e, err := message.New(h, r)
	if err != nil && !message.IsUnknownCharset(err) {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(e.Body, 64<<10))
	return string(b)
}

// tellOwners puts a notice to the list's owners in the outbox (nil: none).
func (p *Processor) tellOwners(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, n *notice.Message) error {
	if n == nil {
		return nil
	}
	owners, err := members.Owners(ctx, tx, l.ID)
	if err != nil || len(owners) == 0 {
		return err
	}
	m.post(*n, owners)
	return nil
}
