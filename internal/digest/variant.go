package digest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Digest formats, as members choose them (members.Delivery.DigestFormat)
// and lists offer them.
const (
	FormatMIME    = "mime"    // multipart/digest of the posts as archived (RFC 2046 §5.1.5)
	FormatPlain   = "plain"   // one text of the posts' text (RFC 1153)
	FormatSummary = "summary" // one entry per thread, with links
)

// Variant is one member's share of an issue: the format they take it in
// and the articles of it that are theirs, usually all of them; fewer for
// a member who switched to or from digests while the issue was filling.
type Variant struct {
	Format string
	Spans  []Span
}

// Span is the articles From up to, not including, Until.
type Span struct{ From, Until int64 }

// ParseVariant reads a copy's variant as the outbound queue writes it
// (internal/outqueue's expansion of a digest job): the format, a space,
// and a PostgreSQL int8multirange such as {[5,9),[12,20)}.
func ParseVariant(s string) (Variant, error) {
	format, ranges, ok := strings.Cut(s, " ")
	if !ok || !slices.Contains([]string{FormatMIME, FormatPlain, FormatSummary}, format) ||
		!strings.HasPrefix(ranges, "{") || !strings.HasSuffix(ranges, "}") {
		return Variant{}, fmt.Errorf("digest variant %q: want FORMAT {[from,until),…}", s)
	}
	v := Variant{Format: format}
	inner := strings.TrimSuffix(strings.TrimPrefix(ranges, "{"), "}")
	for inner != "" {
		r, rest, _ := strings.Cut(inner, ")")
		inner = strings.TrimPrefix(rest, ",")
		from, until, ok := strings.Cut(strings.TrimPrefix(r, "["), ",")
		a, err1 := strconv.ParseInt(from, 10, 64)
		b, err2 := strconv.ParseInt(until, 10, 64)
		if !ok || err1 != nil || err2 != nil || a >= b {
			return Variant{}, fmt.Errorf("digest variant %q: bad range %q", s, r)
		}
		v.Spans = append(v.Spans, Span{a, b})
	}
	return v, nil
}

// String is the variant as ParseVariant reads it.
func (v Variant) String() string {
	rs := make([]string, len(v.Spans))
	for i, s := range v.Spans {
		rs[i] = fmt.Sprintf("[%d,%d)", s.From, s.Until)
	}
	return v.Format + " {" + strings.Join(rs, ",") + "}"
}

// Holds reports whether the article is the member's.
func (v Variant) Holds(article int64) bool {
	for _, s := range v.Spans {
		if article >= s.From && article < s.Until {
			return true
		}
	}
	return false
}

// Whole reports whether the variant holds the whole issue.
func (v Variant) Whole(is Issue) bool {
	return len(v.Spans) == 1 && v.Spans[0].From <= is.First && v.Spans[0].Until > is.Last
}
