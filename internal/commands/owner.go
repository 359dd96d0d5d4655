package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/moderation"
	"github.com/parley-list/parley/internal/policy"
	"github.com/parley-list/parley/internal/tokens"
)

// Moderator decides on held posts (moderation.Service is one).
type Moderator interface {
	Approve(ctx context.Context, listID, id int64, by string) (archive.Stored, error)
	Reject(ctx context.Context, listID, id int64, reason, by string) error
	Discard(ctx context.Context, listID, id int64, by string) error
}

// ownerCommands need an owner or moderator, authenticated by the list's
// moderator password (Approved:) or by confirming a challenge mailed to
// their registered address. From: alone is never enough.
var ownerCommands = map[string]bool{"approve": true, "reject": true, "discard": true, "held": true,
	"add": true, "remove": true, "ban": true, "unban": true, "moderate": true, "members": true, "sub": true}

// HashPassword returns what lists.moderator_password stores.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", errs.Invalidf("a moderator password needs at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// approvedBy reports whether the message carries the list's moderator
// password.
func approvedBy(ctx context.Context, q db.Querier, listID int64, given string) (bool, error) {
	if given == "" {
		return false, nil
	}
	hash, err := lists.ModeratorPassword(ctx, q, listID)
	if err != nil {
		return false, err
	}
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(given)) == nil, nil
}

// ownerRequest handles owner commands: run them when the password came
// with them; otherwise send the sender, if an owner, a challenge.
func (p *Processor) ownerRequest(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, cmds []Command) (string, bool, error) {
	ok, err := approvedBy(ctx, tx, l.ID, m.approved)
	if err != nil {
		return "", false, err
	}
	if ok {
		return p.runOwner(ctx, tx, l, m, "password:"+m.sender, cmds)
	}
	if m.approved != "" {
		// Said as it is, and nothing more: not whether the sender is an
		// owner, nor whether the list has a password at all.
		return refuseOwner(m), false, nil
	}
	addr, err := mailaddr.Parse(m.sender)
	if err != nil {
		return refuseOwner(m), false, nil
	}
	mem, err := members.Get(ctx, tx, l.ID, addr.String())
	if err != nil && !errors.Is(err, members.ErrNotFound) {
		return "", false, err
	}
	if err != nil || mem.Role == members.RoleMember {
		return refuseOwner(m), false, nil
	}
	lines := make([]string, len(cmds))
	for i, c := range cmds {
		lines[i] = c.Line
	}
	st, err := p.challenge(ctx, tx, l, m, tokens.New{ListID: l.ID, Given: mem.Address, Address: addr,
		Action: tokens.Command, Payload: strings.Join(lines, "\n"), TTL: p.ttl()}, []string{mem.Address}, "", func(string) string {
		return "Reply to this message to run these commands on " + l.Address + ":\n\n  " +
			strings.Join(lines, "\n  ") + "\n\nIf you did not send them, ignore this message.\n" +
			"The request expires in " + human(p.ttl()) + ".\n"
	})
	if err != nil || st != sent {
		return st.refusal(mem.Address), false, err
	}
	if norm(mem.Address) == norm(m.sender) {
		return "", true, nil // the challenge itself tells the sender
	}
	return "Owner commands need confirmation: one was sent to your registered address " + mem.Address + ".", true, nil
}

// refuseOwner logs why owner commands were refused (never the password
// that came with them) and returns the answer.
func refuseOwner(m mail) string {
	if m.approved != "" {
		m.info("owner commands refused", "owner_refused", "from", m.sender, "reason", "wrong password")
		return "The moderator password in your message is wrong; nothing was done."
	}
	m.info("owner commands refused", "owner_refused", "from", m.sender, "reason", "not an owner")
	return "Only the list's owners and moderators may use these commands."
}

// runOwner executes authenticated owner commands. by says who, and how
// they proved it ("password:ADDR", "confirmed:ADDR").
func (p *Processor) runOwner(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, by string, cmds []Command) (string, bool, error) {
	var out []string
	queued := false
	for _, c := range cmds {
		before := m.n
		res, q, err := p.ownerCommand(ctx, tx, l, m, by, c)
		if err != nil {
			var inv *errs.Invalid
			if !errors.As(err, &inv) {
				return "", false, err
			}
			res = inv.Msg
		}
		queued = queued || q
		out = append(out, c.Line+": "+res)
		if m.n == before { // else the Moderator logged it (held_approved, …)
			m.info("owner command", "owner_command", "command", c.Name, "by", by, "result", outcome(res))
		}
	}
	return strings.Join(out, "\n"), queued, nil
}

func arg(c Command, i int) string {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return ""
}

func (p *Processor) ownerCommand(ctx context.Context, tx *sqlx.Tx, l lists.List, m mail, by string, c Command) (string, bool, error) {
	switch c.Name {
	case "approve", "reject", "discard":
		id, err := strconv.ParseInt(arg(c, 0), 10, 64)
		if err != nil {
			return c.Name + " needs the number of a held post", false, nil
		}
		_, reason := cutWord(c.Rest) // the whole line after the number
		return p.decideHeld(ctx, l, m, c.Name, id, reason, by)
	case "held":
		hs, err := moderation.HeldPosts(ctx, tx, l.ID)
		if err != nil {
			return "", false, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d held\n", len(hs))
		for _, h := range hs {
			fmt.Fprintf(&b, "  %d  %s  %s  (%s)\n", h.ID, h.From, h.Subject, h.Reason)
		}
		return b.String(), false, nil
	case "add":
		return p.add(ctx, tx, l, c)
	case "remove":
		if err := members.Remove(ctx, tx, l.ID, arg(c, 0)); err != nil {
			return "", false, err
		}
		if strings.EqualFold(arg(c, 1), "quiet") {
			return "removed", false, nil
		}
		return "removed", true, p.greeter().Removed(ctx, tx, l, arg(c, 0), "by the list's owners", false)
	case "sub":
		return p.subCommand(ctx, tx, l, by, c)
	case "ban", "unban":
		return p.ban(ctx, tx, l, c)
	case "moderate":
		on, err := onOff(arg(c, 1))
		if err != nil {
			return "", false, err
		}
		_, err = members.Update(ctx, tx, l.ID, arg(c, 0), members.Settings{Moderated: &on})
		return "done", false, err
	case "members":
		ms, err := members.All(ctx, tx, l.ID, members.Filter{})
		if err != nil {
			return "", false, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d members\n", len(ms))
		for _, m := range ms {
			fmt.Fprintf(&b, "  %s  %s  %s  %s\n", m.Address, m.Role, m.Delivery, m.Status)
		}
		return b.String(), false, nil
	}
	return "unknown owner command", false, nil
}

// add runs "add ADDRESS [MODE] [quiet]": the new member gets the
// welcome unless "quiet".
func (p *Processor) add(ctx context.Context, tx *sqlx.Tx, l lists.List, c Command) (string, bool, error) {
	mode, quiet := members.DeliveryRegular, false
	for _, a := range c.Args[min(1, len(c.Args)):] {
		if strings.EqualFold(a, "quiet") {
			quiet = true
			continue
		}
		d, err := members.ParseDelivery(a)
		if err != nil {
			return "", false, err
		}
		mode = d
	}
	m, err := members.ParseNew(arg(c, 0), members.RoleMember, mode)
	if err != nil {
		return "", false, err
	}
	added, err := members.Add(ctx, tx, l.ID, []members.New{m})
	if err != nil || len(added) == 0 {
		return "already a member", false, err
	}
	if quiet {
		return "added", false, nil
	}
	return "added; a welcome was sent", true, p.greeter().Welcome(ctx, tx, l, m.Given, m.Name)
}

func onOff(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "yes", "true":
		return true, nil
	case "off", "no", "false":
		return false, nil
	}
	return false, errs.Invalidf("say on or off")
}

func (p *Processor) ban(ctx context.Context, tx *sqlx.Tx, l lists.List, c Command) (string, bool, error) {
	pattern, ok := policy.ParseBanPattern(arg(c, 0))
	if !ok {
		return "", false, errs.Invalidf("%q is not a usable pattern", arg(c, 0))
	}
	if c.Name == "ban" {
		_, err := policy.Ban(ctx, tx, l.ID, pattern)
		return "banned", false, err
	}
	_, err := policy.Unban(ctx, tx, l.ID, pattern)
	return "unbanned", false, err
}

// decideHeld approves, rejects or discards a held post.
// A decision on a post that is not (or no longer) held is answered, not
// failed: a moderator may well reply to a notice after someone else
// decided.
func (p *Processor) decideHeld(ctx context.Context, l lists.List, m mail, verb string, id int64, reason, by string) (string, bool, error) {
	if p.Moderator == nil {
		return "moderation by email is not available", false, nil
	}
	var err error
	res, queued := "discarded", false
	switch verb {
	case "approve":
		var st archive.Stored
		st, err = p.Moderator.Approve(ctx, l.ID, id, by)
		res, queued = fmt.Sprintf("approved; archived as article %d", st.Article), true
	case "reject":
		err = p.Moderator.Reject(ctx, l.ID, id, reason, by)
		res, queued = "rejected", true
	default:
		err = p.Moderator.Discard(ctx, l.ID, id, by)
	}
	var inv *errs.Invalid
	switch {
	case err == nil:
		m.n++ // the Moderator logged the decision (held_approved, …)
		return res, queued, nil
	case errors.As(err, &inv):
		return inv.Msg, false, nil
	}
	return "", false, err
}
