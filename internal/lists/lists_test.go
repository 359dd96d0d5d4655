package lists_test

import (
	"errors"
	"fmt"
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
