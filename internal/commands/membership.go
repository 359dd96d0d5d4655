package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notice"
)

// Greeter queues the mails a change of membership brings, whoever made
// it (a confirmation by mail, an owner's command, the CLI): the welcome,
// the goodbye, the answer to a subscription request, and the owners'
// notice when the list asks for them. Everything is written in the
// caller's transaction; the caller pokes the delivery workers after
// commit.
type Greeter struct {
	Hostname string
	Archive  Access
	Now      func() time.Time // default time.Now
}

func (g Greeter) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

// Welcome queues the list's welcome to a new member (name: their display
// name, "" none).
func (g Greeter) Welcome(ctx context.Context, q db.Querier, l lists.List, address, name string) error {
	return notice.Queue(ctx, q, l, []string{address}, g.welcome(ctx, q, l, address, name).Render(g.Hostname, g.now()))
}

func (g Greeter) welcome(ctx context.Context, q db.Querier, l lists.List, address, name string) notice.Message {
	request := mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "")
	return notice.Message{From: request, To: members.Named(name, address), Loop: request,
		Subject: "Welcome to " + l.Address, Text: renderView(ctx, q, "welcome", l, view(l, g.Archive))}
}

// Removed queues the goodbye to a removed member (when the list sends
// them) and, when the member left on their own (self), the owners'
// notice (when the list asks for it): the owners know of what they did
// themselves.
func (g Greeter) Removed(ctx context.Context, q db.Querier, l lists.List, address, how string, self bool) error {
	if n := notice.Goodbye(l, address, how); n != nil {
		if err := notice.Queue(ctx, q, l, []string{address}, n.Render(g.Hostname, g.now())); err != nil {
			return err
		}
	}
	if !self {
		return nil
	}
	return g.tellOwners(ctx, q, l, notice.Membership(l, address, "left", how))
}

func (g Greeter) tellOwners(ctx context.Context, q db.Querier, l lists.List, n *notice.Message) error {
	if n == nil {
		return nil
	}
	owners, err := members.Owners(ctx, q, l.ID)
	if err != nil || len(owners) == 0 {
		return err
	}
	return notice.Queue(ctx, q, l, owners, n.Render(g.Hostname, g.now()))
}

// Decide approves or refuses a subscription request (by names who, for
// the record) and tells the requester: a welcome, or the refusal with
// its reason. A request decided already is answered with who decided it
// and when (an *errs.Invalid wrapping members.ErrDecided).
func (g Greeter) Decide(ctx context.Context, q db.Querier, l lists.List, id int64, approve bool, by, reason string) (members.Request, error) {
	r, err := members.DecideRequest(ctx, q, l.ID, id, approve, by, reason)
	if err != nil {
		return r, err
	}
	if !approve {
		n := notice.Refused(l, r.Address, reason)
		return r, notice.Queue(ctx, q, l, []string{r.Address}, n.Render(g.Hostname, g.now()))
	}
	return r, g.Welcome(ctx, q, l, r.Address, "")
}

// subCommand runs an owner's "sub ls", "sub approve ID|ADDRESS" or "sub
// refuse ID|ADDRESS [REASON]" by mail.
func (p *Processor) subCommand(ctx context.Context, q db.Querier, l lists.List, by string, c Command) (string, bool, error) {
	verb, rest := cutWord(c.Rest)
	switch strings.ToLower(verb) {
	case "", "ls", "list":
		rs, err := members.Requests(ctx, q, l.ID)
		if err != nil {
			return "", false, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d waiting\n", len(rs))
		for _, r := range rs {
			fmt.Fprintf(&b, "  %d  %s  %s  (asked %s)\n", r.ID, r.Address, r.Delivery, r.RequestedAt.UTC().Format("2 Jan 2006"))
		}
		return b.String(), false, nil
	case "approve", "refuse", "reject":
		which, reason := cutWord(rest)
		r, err := members.FindRequest(ctx, q, l.ID, which)
		if err != nil {
			return "", false, err
		}
		approve := strings.EqualFold(verb, "approve")
		if _, err := p.greeter().Decide(ctx, q, l, r.ID, approve, by, reason); err != nil {
			if errors.Is(err, members.ErrDecided) || errs.IsInvalid(err) {
				return err.Error(), false, nil
			}
			return "", false, err
		}
		if approve {
			return r.Address + " is subscribed; a welcome was sent", true, nil
		}
		return r.Address + " was refused and told so", true, nil
	}
	return `use "sub ls", "sub approve ID|ADDRESS" or "sub refuse ID|ADDRESS [REASON]"`, false, nil
}

func (p *Processor) greeter() Greeter {
	return Greeter{Hostname: p.Hostname, Archive: p.Archive}
}
