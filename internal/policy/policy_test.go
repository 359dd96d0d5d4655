package policy

import (
	"testing"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	base := Facts{List: "dev@lists.example.org", ListID: "dev.lists.example.org", Policy: lists.PostMembers,
		NonMember: lists.ActionHold, Sender: "bob@example.org", Role: members.RoleMember}
	with := func(change func(f *Facts)) Facts { f := base; change(&f); return f }
	tests := []struct {
		name       string
		facts      Facts
		wantAction Action
		wantRule   string
	}{
		{"member posts", base, Accept, "accept"},
		{"open list, stranger", with(func(f *Facts) { f.Policy, f.Role = lists.PostOpen, "" }), Accept, "accept"},
		{"non-member held", with(func(f *Facts) { f.Role = "" }), Hold, "nonmember"},
		{"non-member rejected", with(func(f *Facts) { f.Role, f.NonMember = "", lists.ActionReject }), Reject, "nonmember"},
		{"non-member discarded", with(func(f *Facts) { f.Role, f.NonMember = "", lists.ActionDiscard }), Discard, "nonmember"},
		{"moderated list", with(func(f *Facts) { f.Policy = lists.PostModerated }), Hold, "moderated_list"},
		{"moderated member", with(func(f *Facts) { f.Moderated = true }), Hold, "moderated_member"},
		{"announce: member refused", with(func(f *Facts) { f.Policy = lists.PostAnnounce }), Reject, "announce"},
		{"announce: owner posts", with(func(f *Facts) { f.Policy, f.Role = lists.PostAnnounce, members.RoleOwner }), Accept, "accept"},
		{"announce: moderator posts", with(func(f *Facts) { f.Policy, f.Role = lists.PostAnnounce, members.RoleModerator }), Accept, "accept"},
		{"banned member", with(func(f *Facts) { f.Banned = true }), Reject, "banned"},
		{"own List-Id: loop", with(func(f *Facts) { f.ListIDs = []string{"dev.lists.example.org"} }), Discard, "loop"},
		{"other List-Id is fine", with(func(f *Facts) { f.ListIDs = []string{"other.example.net"} }), Accept, "accept"},
		{"own X-Loop", with(func(f *Facts) { f.XLoop = []string{"dev@lists.example.org"} }), Discard, "loop"},
		{"null sender", with(func(f *Facts) { f.NullSender = true }), Discard, "bounce"},
		{"mailer-daemon", with(func(f *Facts) { f.MailerDemon = true }), Discard, "bounce"},
		{"auto-replied", with(func(f *Facts) { f.AutoSubmit = "auto-replied" }), Discard, "auto_reply"},
		{"auto-submitted: no", with(func(f *Facts) { f.AutoSubmit = "no" }), Accept, "accept"},
		{"precedence bulk", with(func(f *Facts) { f.Precedence = "bulk" }), Hold, "auto_reply"},
		{"loop beats open policy", with(func(f *Facts) { f.Policy, f.XLoop = lists.PostOpen, []string{"dev@lists.example.org"} }), Discard, "loop"},
		{"banned owner on announce", with(func(f *Facts) { f.Policy, f.Role, f.Banned = lists.PostAnnounce, members.RoleOwner, true }), Reject, "banned"},
	}
	for _, tc := range tests {
		d := Decide(tc.facts)
		if d.Action != tc.wantAction || d.Rule != tc.wantRule || d.Reason == "" {
			t.Errorf("%s: Decide() = %s, want %s by rule %s", tc.name, d, tc.wantAction, tc.wantRule)
		}
	}
}

// FuzzDecide is the policy input parser's fuzz target: facts are read from
// an arbitrary message header as intake reads them, and Decide must
// return one of the four actions with a named rule and a reason, and
// never accept a message that carries the list's own loop markers.
func FuzzDecide(f *testing.F) {
	f.Add([]byte("From: bob@example.org\r\nList-Id: <dev.lists.example.org>\r\n\r\n"), uint8(0))
	f.Add([]byte("From: MAILER-DAEMON@x\r\nAuto-Submitted: auto-replied\r\nX-Loop: dev@lists.example.org\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, header []byte, pick uint8) {
		s, err := mailmsg.Parse(mailmsg.Canonicalize(header), "h.example", mailmsg.Limits{})
		if err != nil {
			return
		}
		policies := []lists.PostPolicy{lists.PostOpen, lists.PostMembers, lists.PostModerated, lists.PostAnnounce}
		roles := []members.Role{"", members.RoleMember, members.RoleModerator, members.RoleOwner}
		fa := Facts{List: "dev@lists.example.org", ListID: "dev.lists.example.org",
			Policy: policies[pick%4], Role: roles[(pick/4)%4], NonMember: lists.ActionHold,
			Sender: s.From, ListIDs: s.ListIDs, XLoop: s.XLoop, AutoSubmit: s.AutoSubmitted,
			Precedence: s.Precedence, MailerDemon: mailaddr.IsMailerDaemon(s.From)}
		d := Decide(fa)
		switch d.Action {
		case Accept, Hold, Reject, Discard:
		default:
			t.Fatalf("Decide() action %q", d.Action)
		}
		if d.Rule == "" || d.Reason == "" {
			t.Fatalf("Decide() = %+v without rule or reason", d)
		}
		for _, id := range s.ListIDs {
			if id == fa.ListID && d.Action == Accept {
				t.Fatalf("accepted a message carrying the list's own List-Id")
			}
		}
	})
}
