package lists_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func ptr[T any](v T) *T { return &v }

func TestCreateGetUpdateDelete(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	ctx := t.Context()
	addr, _ := mailaddr.ParseList("Dev@Lists.Example.ORG")
	created := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	l, err := lists.Create(ctx, d, addr, lists.Settings{
		PostPolicy:    ptr(lists.PostOpen),
		SubjectPrefix: ptr("[dev]"),
	}, created)
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if got, want := l.Address, "dev@lists.example.org"; got != want {
		t.Errorf("Address = %q, want %q", got, want)
	}
	if l.PostPolicy != lists.PostOpen || l.Archive != lists.ArchivePublic || l.SubjectPrefix != "[dev]" {
		t.Errorf("settings = %s/%s/%q, want open/public/[dev]", l.PostPolicy, l.Archive, l.SubjectPrefix)
	}
	if l.UIDValidity != created.Unix() || l.NextArticle != 1 {
		t.Errorf("uidvalidity, next = %d, %d; want %d, 1", l.UIDValidity, l.NextArticle, created.Unix())
	}

	_, err = lists.Create(ctx, d, addr, lists.Settings{}, created)
	if !errors.Is(err, lists.ErrExists) || !errs.IsInvalid(err) {
		t.Errorf("second Create() = %v, want ErrExists as *errs.Invalid", err)
	}

	l2, err := lists.Update(ctx, d, "DEV@lists.example.org", lists.Settings{Archive: ptr(lists.ArchivePrivate), DisplayName: ptr("Developers")})
	if err != nil {
		t.Fatalf("Update() = %v", err)
	}
	if l2.Archive != lists.ArchivePrivate || l2.DisplayName != "Developers" || l2.PostPolicy != lists.PostOpen {
		t.Errorf("after Update: %+v", l2)
	}
	if l2.UIDValidity != l.UIDValidity {
		t.Errorf("UIDVALIDITY changed by Update: %d -> %d", l.UIDValidity, l2.UIDValidity)
	}
	if err := lists.Delete(ctx, d, "dev@lists.example.org"); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	if _, err := lists.Get(ctx, d, "dev@lists.example.org"); !errors.Is(err, lists.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	addr, _ := mailaddr.ParseList("x@example.org")
	bad := []lists.Settings{
		{SubjectPrefix: ptr("[dev]\r\nBcc: victim@example.org")},
		{DisplayName: ptr("a\x00b")},
		{SubjectPrefix: ptr(string(make([]byte, 65)))},
	}
	for _, s := range bad {
		if _, err := lists.Create(t.Context(), d, addr, s, time.Now()); !errs.IsInvalid(err) {
			t.Errorf("Create(%+v) = %v, want *errs.Invalid", s, err)
		}
	}
	if n, _ := lists.Count(t.Context(), d); n != 0 {
		t.Errorf("%d lists after refused creates, want 0", n)
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"open", "MEMBERS", " moderated ", "announce"} {
		if _, err := lists.ParsePostPolicy(in); err != nil {
			t.Errorf("ParsePostPolicy(%q) = %v", in, err)
		}
	}
	for _, in := range []string{"", "closed", "member"} {
		if _, err := lists.ParsePostPolicy(in); !errs.IsInvalid(err) {
			t.Errorf("ParsePostPolicy(%q) = %v, want *errs.Invalid", in, err)
		}
	}
}

// TestCreateWithEverySetting: every setting given at creation is kept.
func TestCreateWithEverySetting(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	addr, _ := mailaddr.ParseList("all@example.org")
	s := lists.Settings{DisplayName: ptr("All"), Description: ptr("d"), PostPolicy: ptr(lists.PostAnnounce),
		Archive: ptr(lists.ArchivePrivate), SubjectPrefix: ptr("[all]"), NonMember: ptr(lists.ActionDiscard),
		MaxMessage: ptr(int64(1000)), SubjectThread: ptr(true), DMARC: ptr("always"), VERP: ptr(false)}
	l, err := lists.Create(t.Context(), d, addr, s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintln(l.DisplayName, l.Description, l.PostPolicy, l.Archive, l.SubjectPrefix, l.NonMember, l.MaxMessage, l.SubjectThread, l.DMARC, l.VERP)
	if want := "All d announce private [all] discard 1000 true always false\n"; got != want {
		t.Errorf("created list: %s, want %s", got, want)
	}
}

// TestEverySettingOnCreate: every setting given to Create is stored (the
// subscription policy once was not), and defaults fill the rest.
func TestEverySettingOnCreate(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	ctx := t.Context()
	addr, _ := mailaddr.ParseList("club@lists.example.org")
	l, err := lists.Create(ctx, d, addr, lists.Settings{SubscribeBy: ptr("approve"), Roster: ptr("members")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.SubscribeBy != "approve" || l.Roster != "members" {
		t.Errorf("subscribe %q, roster %q; want approve, members", l.SubscribeBy, l.Roster)
	}
	other, _ := mailaddr.ParseList("plain@lists.example.org")
	if l, err = lists.Create(ctx, d, other, lists.Settings{}, time.Now()); err != nil || l.SubscribeBy != "confirm" || l.Roster != "owners" {
		t.Errorf("defaults: %+v, %v; want confirm and owners", l, err)
	}
	if _, err := lists.Update(ctx, d, "plain@lists.example.org", lists.Settings{Roster: ptr("everyone")}); !errors.As(err, new(*errs.Invalid)) {
		t.Errorf("roster everyone: %v, want refused", err)
	}
	if l, err = lists.Update(ctx, d, "plain@lists.example.org", lists.Settings{Roster: ptr("public")}); err != nil || l.Roster != "public" {
		t.Errorf("roster public: %+v, %v", l.Roster, err)
	}
}

// TestDomainsAndPasswords: the served domains, the public lists of one,
// and the moderator password, which no view of a list shows.
func TestDomainsAndPasswords(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	ctx := t.Context()
	for _, s := range []struct {
		addr    string
		archive lists.Archive
	}{{"a@lists.example.org", lists.ArchivePublic}, {"b@lists.example.org", lists.ArchivePrivate}, {"c@other.example", lists.ArchivePublic}} {
		a, _ := mailaddr.ParseList(s.addr)
		if _, err := lists.Create(ctx, d, a, lists.Settings{Archive: ptr(s.archive)}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for domain, want := range map[string]bool{"lists.example.org": true, "other.example": true, "example.org": false} {
		if got, err := lists.DomainServed(ctx, d, domain); err != nil || got != want {
			t.Errorf("DomainServed(%s) = %v, %v; want %v", domain, got, err, want)
		}
	}
	pub, err := lists.PublicOn(ctx, d, "lists.example.org")
	if err != nil || len(pub) != 1 || pub[0].Address != "a@lists.example.org" {
		t.Errorf("PublicOn = %+v, %v; want only a@lists.example.org", pub, err)
	}
	l, _ := lists.Get(ctx, d, "a@lists.example.org")
	if err := lists.SetModeratorPassword(ctx, d, l.ID, "$2a$hash"); err != nil {
		t.Fatal(err)
	}
	if h, err := lists.ModeratorPassword(ctx, d, l.ID); err != nil || h != "$2a$hash" {
		t.Errorf("ModeratorPassword = %q, %v", h, err)
	}
	if js := fmt.Sprintf("%+v", l); strings.Contains(js, "$2a$") {
		t.Errorf("a list's view shows its moderator password: %s", js)
	}
}

// TestPrivateListsAskOwners: a private list's subscriptions wait for an
// owner's approval unless the settings say otherwise, whether it is made
// private at creation or later; owners hear of joins and leaves by
// default.
func TestPrivateListsAskOwners(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	ctx := t.Context()
	create := func(addr string, s lists.Settings) lists.List {
		a, _ := mailaddr.ParseList(addr)
		l, err := lists.Create(ctx, d, a, s, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	priv := lists.ArchivePrivate
	if l := create("a@lists.example.org", lists.Settings{Archive: &priv}); l.SubscribeBy != "approve" || !l.NotifyMembership {
		t.Errorf("private list: subscribe %q, notify %v; want approve and on", l.SubscribeBy, l.NotifyMembership)
	}
	if l := create("b@lists.example.org", lists.Settings{Archive: &priv, SubscribeBy: ptr("confirm")}); l.SubscribeBy != "confirm" {
		t.Errorf("private list with --subscribe confirm: %q", l.SubscribeBy)
	}
	if l := create("c@lists.example.org", lists.Settings{}); l.SubscribeBy != "confirm" {
		t.Errorf("public list: %q, want confirm", l.SubscribeBy)
	}
	l, err := lists.Update(ctx, d, "c@lists.example.org", lists.Settings{Archive: &priv})
	if err != nil || l.SubscribeBy != "approve" {
		t.Errorf("made private: %q, %v; want approve", l.SubscribeBy, err)
	}
	if l, err := lists.Update(ctx, d, "c@lists.example.org", lists.Settings{NotifyMembership: ptr(false)}); err != nil || l.NotifyMembership {
		t.Errorf("notify off: %v, %v", l.NotifyMembership, err)
	}
}
