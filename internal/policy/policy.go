// Package policy owns the posting rules: an ordered list of rules, each a
// pure function from the facts about one post to an optional decision. The
// first rule that decides wins; a post no rule stops is accepted.
//
// Gathering the facts (membership, bans, headers) is the caller's job, so
// the rules themselves need no database and are tested with a table. The
// package also owns the ban patterns (bans.go, the bans table): the one
// rule whose data an owner edits.
package policy

import (
	"fmt"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/members"
)

// Action is what happens to a post.
type Action string

// Actions.
const (
	Accept  Action = "accept"  // archive and distribute
	Hold    Action = "hold"    // keep for a moderator, notify them
	Reject  Action = "reject"  // refuse at SMTP time (550 5.7.1)
	Discard Action = "discard" // accept at SMTP time, record, never distribute
)

// Decision is the outcome for one post on one list.
type Decision struct {
	Action Action
	Rule   string // stable name of the rule that decided, for logs and metrics
	Reason string // short, safe to show the sender
}

// Facts are everything the rules look at.
type Facts struct {
	List        string // list address
	ListID      string // RFC 2919 list-id of this list, e.g. "dev.lists.example.org"
	Policy      lists.PostPolicy
	NonMember   lists.Action
	Sender      string       // From: address (or envelope sender when From has none)
	NullSender  bool         // MAIL FROM:<>
	Role        members.Role // "" when not a member
	Moderated   bool         // the member's own moderation flag
	Banned      bool         // sender matches a list or server-wide ban
	ListIDs     []string     // List-Id header values, lower case
	XLoop       []string     // X-Loop header values, lower case
	AutoSubmit  string       // Auto-Submitted value, lower case
	Precedence  string       // Precedence value, lower case
	MailerDemon bool         // sender's local part is MAILER-DAEMON (or postmaster-like)
}

// rule returns a decision, or ok=false to pass to the next rule.
type rule struct {
	name   string
	decide func(f *Facts) (Decision, bool)
}

// rules in the order they apply. Loop and bounce protection come first:
// nothing a list sent or an auto-responder wrote may reach members again,
// whatever the posting policy says.
var rules = []rule{
	{"loop", func(f *Facts) (Decision, bool) {
		for _, id := range f.ListIDs {
			if id == f.ListID {
				return Decision{Discard, "", "the message already went through this list (List-Id)"}, true
			}
		}
		for _, x := range f.XLoop {
			if x == f.List {
				return Decision{Discard, "", "the message already went through this list (X-Loop)"}, true
			}
		}
		return Decision{}, false
	}},
	{"bounce", func(f *Facts) (Decision, bool) {
		if f.NullSender || f.MailerDemon {
			return Decision{Discard, "", "delivery reports are not posts"}, true
		}
		return Decision{}, false
	}},
	{"auto_reply", func(f *Facts) (Decision, bool) {
		if f.AutoSubmit != "" && f.AutoSubmit != "no" {
			return Decision{Discard, "", "automatic replies are not posts (Auto-Submitted)"}, true
		}
		if f.Precedence == "bulk" || f.Precedence == "junk" {
			return Decision{Hold, "", "bulk mail needs a moderator's approval (Precedence)"}, true
		}
		return Decision{}, false
	}},
	{"banned", func(f *Facts) (Decision, bool) {
		if f.Banned {
			return Decision{Reject, "", "you may not post to this list"}, true
		}
		return Decision{}, false
	}},
	{"announce", func(f *Facts) (Decision, bool) {
		if f.Policy == lists.PostAnnounce && f.Role != members.RoleOwner && f.Role != members.RoleModerator {
			return Decision{Reject, "", "only the list's owners and moderators may post to this announcement list"}, true
		}
		return Decision{}, false
	}},
	{"moderated_list", func(f *Facts) (Decision, bool) {
		if f.Policy == lists.PostModerated {
			return Decision{Hold, "", "every post to this list is approved by a moderator"}, true
		}
		return Decision{}, false
	}},
	{"moderated_member", func(f *Facts) (Decision, bool) {
		if f.Role != "" && f.Moderated {
			return Decision{Hold, "", "your posts are approved by a moderator"}, true
		}
		return Decision{}, false
	}},
	{"nonmember", func(f *Facts) (Decision, bool) {
		if f.Policy != lists.PostMembers || f.Role != "" {
			return Decision{}, false
		}
		switch f.NonMember {
		case lists.ActionReject:
			return Decision{Reject, "", "only members may post to this list"}, true
		case lists.ActionDiscard:
			return Decision{Discard, "", "only members may post to this list"}, true
		}
		return Decision{Hold, "", "posts from non-members are approved by a moderator"}, true
	}},
}

// Decide applies the rules in order.
func Decide(f Facts) Decision {
	for _, r := range rules {
		if d, ok := r.decide(&f); ok {
			d.Rule = r.name
			return d
		}
	}
	return Decision{Action: Accept, Rule: "accept", Reason: "accepted"}
}

// String renders a decision for logs.
func (d Decision) String() string { return fmt.Sprintf("%s (%s: %s)", d.Action, d.Rule, d.Reason) }
