package lists_test

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"daily", "daily 06:00"},
		{"daily 7:05", "daily 07:05"},
		{"Daily  23:59", "daily 23:59"},
		{"weekly mon", "weekly mon 06:00"},
		{"weekly Sunday 18:30", "weekly sun 18:30"},
		{"none", "none"},
		{"daily 24:00", ""},
		{"daily 12:60", ""},
		{"weekly", ""},
		{"weekly funday 10:00", ""},
		{"hourly", ""},
		{"none 10:00", ""},
		{"", ""},
	}
	for _, tc := range tests {
		s, err := lists.ParseSchedule(tc.in)
		if tc.want == "" {
			var inv *errs.Invalid
			if !errors.As(err, &inv) {
				t.Errorf("ParseSchedule(%q) = %v, %v; want an *errs.Invalid", tc.in, s, err)
			}
			continue
		}
		if err != nil || s.String() != tc.want {
			t.Errorf("ParseSchedule(%q) = %q, %v; want %q", tc.in, s, err, tc.want)
		}
	}
}

func TestScheduleLast(t *testing.T) {
	t.Parallel()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			panic(err)
		}
		return t
	}
	daily, _ := lists.ParseSchedule("daily 06:00")
	weekly, _ := lists.ParseSchedule("weekly mon 06:00")
	early, _ := lists.ParseSchedule("daily 02:30")
	tests := []struct {
		s        lists.Schedule
		now      time.Time
		wantLast time.Time
	}{
		{daily, at("2026-12-03 07:00"), at("2026-12-03 06:00")},
		{daily, at("2026-12-03 06:00"), at("2026-12-03 06:00")},
		{daily, at("2026-12-03 05:59"), at("2026-12-02 06:00")},
		{weekly, at("2026-12-03 07:00"), at("2026-11-30 06:00")}, // a Thursday: last Monday
		{weekly, at("2026-11-30 05:00"), at("2026-11-23 06:00")},
		// 02:30 does not exist on 29 March 2026 in Berlin: time.Date reads it as 03:30.
		{early, at("2026-03-29 04:00"), time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)},
		{lists.Schedule{}, at("2026-12-03 07:00"), time.Time{}},
	}
	for _, tc := range tests {
		if got := tc.s.Last(tc.now, berlin); !got.Equal(tc.wantLast) {
			t.Errorf("%s .Last(%s) = %s, want %s", tc.s, tc.now, got, tc.wantLast)
		}
	}
}

// TestDeliverySettings: bad digest, footer and Reply-To settings are
// refused with one clear line and change nothing.
func TestDeliverySettings(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.Digest.Threshold != 30720 || l.Digest.Schedule.String() != "daily 06:00" || l.Digest.TZ != "UTC" ||
		l.Digest.Volume != "yearly" || len(l.Digest.Formats) != 3 || l.ReplyTo != "author" || l.Footer != "" {
		t.Errorf("defaults: %+v reply-to %q footer %q", l.Digest, l.ReplyTo, l.Footer)
	}
	neg, tz, vol, empty, bad := int64(-1), "Mars/Olympus", "daily", []string{}, []string{"mime", "html"}
	footer, replyTo := "bye {nonesuch}", "not an address"
	for _, s := range []lists.Settings{{DigestThreshold: &neg}, {DigestTZ: &tz}, {DigestVolume: &vol},
		{DigestFormats: &empty}, {DigestFormats: &bad}, {Footer: &footer}, {ReplyTo: &replyTo}} {
		if _, err := lists.Update(t.Context(), d, l.Address, s); !errs.IsInvalid(err) {
			t.Errorf("Update(%+v): err %v, want an *errs.Invalid", s, err)
		}
	}
	sched, _ := lists.ParseSchedule("weekly fri 17:00")
	formats := []string{"plain"}
	tz, vol, footer, replyTo = "Asia/Tokyo", "monthly", "-- \n{list} {unsubscribe}", "list"
	size := int64(0)
	got, err := lists.Update(t.Context(), d, l.Address, lists.Settings{DigestThreshold: &size, DigestSchedule: &sched,
		DigestTZ: &tz, DigestVolume: &vol, DigestFormats: &formats, Footer: &footer, ReplyTo: &replyTo})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest.Threshold != 0 || got.Digest.Schedule != sched || got.Digest.TZ != tz || got.Digest.Volume != vol ||
		!got.Digest.Offers("plain") || got.Digest.Offers("mime") || got.Footer != footer || got.ReplyTo != "list" {
		t.Errorf("after update: %+v footer %q reply-to %q", got.Digest, got.Footer, got.ReplyTo)
	}
}
