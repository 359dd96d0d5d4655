package members_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func ptr[T any](v T) *T { return &v }

func newList(t *testing.T) (lists.List, *sqlx.DB) {
	t.Helper()
	d := pgtest.New(t)
	addr, _ := mailaddr.ParseList("dev@example.org")
	l, err := lists.Create(t.Context(), d, addr, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return l, d
}

func mustNew(t *testing.T, s string) members.New {
	t.Helper()
	n, err := members.ParseNew(s, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAddressIdentity: addresses compare case-insensitively, local part
// included, and the spelling first given is kept for display and
// delivery.
func TestAddressIdentity(t *testing.T) {
	t.Parallel()
	l, d := newList(t)
	ctx := t.Context()
	added, err := members.Add(ctx, d, l.ID, []members.New{
		mustNew(t, "Alice@Example.ORG"),
		mustNew(t, "Alice@example.org"), // the same member
		mustNew(t, "alice@example.org"), // the same member too
		mustNew(t, "GRACE@School8.Example"),
	})
	if err != nil {
		t.Fatalf("Add() = %v", err)
	}
	if want := []string{"alice@example.org", "grace@school8.example"}; !slices.Equal(sorted(added), want) {
		t.Errorf("added %v, want %v", added, want)
	}
	if again, err := members.Add(ctx, d, l.ID, []members.New{mustNew(t, "grace@school8.example")}); err != nil || len(again) != 0 {
		t.Errorf("adding grace@ again in lower case: %v, %v; want nothing added", again, err)
	}
	m, err := members.Get(ctx, d, l.ID, "ALICE@EXAMPLE.org")
	if err != nil {
		t.Fatalf("Get() = %v", err)
	}
	if m.Address != "Alice@Example.ORG" || m.Role != members.RoleMember || m.Delivery != members.DeliveryRegular || m.Status != members.StatusActive {
		t.Errorf("member = %+v, want as given, member/regular/active", m)
	}
	existing, err := members.Existing(ctx, d, l.ID, []string{"alice@example.org", "bob@example.org"})
	if err != nil || !slices.Equal(existing, []string{"alice@example.org"}) {
		t.Errorf("Existing() = %v, %v", existing, err)
	}
}

func TestBulkAdd(t *testing.T) {
	t.Parallel()
	l, d := newList(t)
	var ms []members.New
	for i := range 5000 {
		ms = append(ms, mustNew(t, fmt.Sprintf("user%d@example.net", i)))
	}
	added, err := members.Add(t.Context(), d, l.ID, ms)
	if err != nil || len(added) != 5000 {
		t.Fatalf("Add(5000) = %d added, %v", len(added), err)
	}
	all, err := members.All(t.Context(), d, l.ID, members.Filter{})
	if err != nil || len(all) != 5000 {
		t.Fatalf("All() = %d, %v; want 5000", len(all), err)
	}
}

func TestUpdateAndRemove(t *testing.T) {
	t.Parallel()
	l, d := newList(t)
	ctx := t.Context()
	if _, err := members.Add(ctx, d, l.ID, []members.New{mustNew(t, "bob@example.org")}); err != nil {
		t.Fatal(err)
	}
	m, err := members.Update(ctx, d, l.ID, "bob@example.org", members.Settings{
		Role: ptr(members.RoleModerator), Delivery: ptr(members.DeliveryDigest), Moderated: ptr(true)})
	if err != nil {
		t.Fatalf("Update() = %v", err)
	}
	if m.Role != members.RoleModerator || m.Delivery != members.DeliveryDigest || !m.Moderated || m.Status != members.StatusActive {
		t.Errorf("after Update: %+v", m)
	}
	owners, _ := members.All(ctx, d, l.ID, members.Filter{Role: members.RoleOwner})
	if len(owners) != 0 {
		t.Errorf("filter by owner = %v, want none", owners)
	}
	if err := members.Remove(ctx, d, l.ID, "bob@example.org"); err != nil {
		t.Fatalf("Remove() = %v", err)
	}
	if err := members.Remove(ctx, d, l.ID, "bob@example.org"); !errors.Is(err, members.ErrNotFound) {
		t.Errorf("second Remove() = %v, want ErrNotFound", err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestOwnAddressesRefused: no list or service address of a served domain
// can become a member of any list, from any caller (CLI, command mail).
func TestOwnAddressesRefused(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"dev@lists.example.org", "DEV-request@lists.example.org", "postmaster@lists.example.org"} {
		n, _ := members.ParseNew(addr, "", "")
		ok, _ := members.ParseNew("fine@example.org", "", "")
		if _, err := members.Add(t.Context(), d, l.ID, []members.New{ok, n}); !errors.Is(err, members.ErrOwnAddress) {
			t.Errorf("Add(%s) = %v, want ErrOwnAddress", addr, err)
		}
	}
	n, _ := members.ParseNew("dev@lists.example.net", "", "") // another domain, not ours
	if _, err := members.Add(t.Context(), d, l.ID, []members.New{n}); err != nil {
		t.Errorf("an address on a domain parley does not serve: %v", err)
	}
}
