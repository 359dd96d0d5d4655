package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/notice"
	"github.com/parley-list/parley/internal/tokens"
)

// sender returns the member a message claims to come from, or nil.
func (p *Processor) sender(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail) (*members.Member, error) {
	addr, err := mailaddr.Parse(m.sender)
	if err != nil {
		return nil, nil
	}
	mem, err := members.Get(ctx, tx, l.ID, addr.String())
	if errors.Is(err, members.ErrNotFound) {
		return nil, nil
	}
	return &mem, err
}

// set asks the member to confirm a change of their own settings (or a new
// archive password): a forged From: cannot switch someone's mail off or
// lock them out of the archive.
func (p *Processor) set(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, c Command) (string, bool, error) {
	if c.Name != "password" {
		if _, err := parseSetting(c, l); err != nil {
			return err.Error(), false, nil
		}
	}
	mem, err := p.sender(ctx, tx, l, m)
	if err != nil || mem == nil {
		return "You are not subscribed to " + l.Address + ".", false, err
	}
	addr, _ := mailaddr.Parse(mem.Address)
	text := "Someone (perhaps you) asked to change your subscription to " + l.Address + ":\n\n  " + c.Line + "\n\n" +
		"To confirm, just reply to this message.\nIf you did not ask for this, ignore this message: nothing changes.\n"
	if c.Name == "password" {
		text = "Someone (perhaps you) asked for a new password for reading the archive of " + l.Address + ".\n\n" +
			"To get it, just reply to this message: the password is mailed to you, and any old one stops working.\n" +
			"If you did not ask for this, ignore this message: your password stays as it is.\n"
	}
	st, err := p.challenge(ctx, tx, l, m, tokens.New{ListID: l.ID, Given: mem.Address, Address: addr,
		Action: tokens.Settings, Payload: c.Line, TTL: p.ttl()}, []string{mem.Address}, "", func(string) string {
		return text + "The request expires in " + human(p.ttl()) + ".\n"
	})
	if err != nil || st != sent {
		return st.refusal(mem.Address), false, err
	}
	if norm(mem.Address) == norm(m.sender) {
		return "", true, nil // the confirmation itself tells the sender
	}
	return "A confirmation was sent to " + mem.Address + ".", true, nil
}

// parseSetting reads "set delivery MODE" (a mode the list offers) and
// "set self-copy on|off".
func parseSetting(c Command, l lists.List) (members.Settings, error) {
	var s members.Settings
	if len(c.Args) != 2 {
		return s, errors.New(`use "set delivery regular|digest|digest-plain|summary|nomail" or "set self-copy on|off"`)
	}
	switch strings.ToLower(c.Args[0]) {
	case "delivery":
		d, err := members.ParseDelivery(c.Args[1])
		if err != nil {
			return s, errors.New("delivery is " + members.DeliveryModes)
		}
		if f := d.DigestFormat(); f != "" && !l.Digest.Offers(f) {
			return s, fmt.Errorf("%s does not offer %s delivery", l.Address, d)
		}
		s.Delivery = &d
	case "self-copy", "selfcopy", "myposts":
		on, err := onOff(c.Args[1])
		if err != nil {
			return s, errors.New("self-copy is on or off")
		}
		s.SelfCopy = &on
	default:
		return s, fmt.Errorf("unknown setting %q", c.Args[0])
	}
	return s, nil
}

// applySetting runs a confirmed setting change.
func (p *Processor) applySetting(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, t tokens.Token) (string, bool, error) {
	c, _ := parseLine(t.Payload)
	if c.Name == "password" {
		return p.newPassword(ctx, tx, l, m, t.AddressNorm)
	}
	s, err := parseSetting(c, l)
	if err != nil {
		return err.Error(), false, nil
	}
	if _, err := members.Update(ctx, tx, l.ID, t.AddressNorm, s); errs.IsInvalid(err) {
		return err.Error(), false, nil
	} else if err != nil {
		return "", false, err
	}
	return "Done: " + t.Payload + ".", false, nil
}

// who answers with the roster when the list lets the sender see it. The
// answer goes to the sender's own address, so a forged From: reveals
// nothing to the forger.
func (p *Processor) who(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail) (string, bool, error) {
	roster := l.Roster
	mem, err := p.sender(ctx, tx, l, m)
	if err != nil {
		return "", false, err
	}
	allowed := roster == "public" || roster == "members" && mem != nil ||
		mem != nil && (mem.Role == members.RoleOwner || mem.Role == members.RoleModerator)
	if !allowed {
		return "The member list of " + l.Address + " is not shown to you.", false, nil
	}
	ms, err := members.All(ctx, tx, l.ID, members.Filter{Status: members.StatusActive})
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d members:\n", len(ms))
	for _, x := range ms {
		fmt.Fprintf(&b, "  %s\n", x.Address)
	}
	return b.String(), false, nil
}

// newPassword issues a fresh archive password, once the member confirmed
// the request from their own address, and mails it there only.
func (p *Processor) newPassword(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, addressNorm string) (string, bool, error) {
	mem, err := members.Get(ctx, tx, l.ID, addressNorm)
	if err != nil {
		return "You are not subscribed to " + l.Address + ".", false, nil
	}
	pw, err := members.NewArchivePassword(ctx, tx, mem.ID)
	if err != nil {
		return "", false, err
	}
	request := mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "")
	v := view(l, p.Archive)
	v.User, v.Password = mem.Address, pw
	m.post(notice.Message{From: request, To: members.Named(mem.DisplayName, mem.Address), Loop: request,
		Subject: "Your archive password for " + l.Address,
		Text:    renderView(ctx, tx, "password", l, v)}, []string{mem.Address})
	if norm(mem.Address) == norm(m.sender) {
		return "", true, nil // the password mail tells them
	}
	return "A new archive password was sent to " + mem.Address + ".", true, nil
}
