package web

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
)

// Bounds of a search.
const (
	maxQuery      = 500 // characters of q
	searchResults = 100
	searchTime    = 5 * time.Second
)

// parseQuery reads a search as people type it: words to find in the
// text, and from:, subject:, after: and before: (YYYY-MM-DD) terms, a
// value in double quotes when it has spaces.
func parseQuery(q string) (archive.Query, bool) {
	var s archive.Query
	var text []string
	ok := true
	for _, tok := range splitQuoted(q) {
		key, val, _ := strings.Cut(tok, ":")
		val = strings.Trim(val, `"`)
		switch strings.ToLower(key) {
		case "from":
			s.From = val
		case "subject":
			s.Subject = val
		case "after", "since":
			t, err := time.Parse(time.DateOnly, val)
			s.After, ok = t, ok && err == nil
		case "before":
			t, err := time.Parse(time.DateOnly, val)
			s.Before, ok = t, ok && err == nil
		default:
			text = append(text, strings.Trim(tok, `"`))
		}
	}
	s.Text = strings.Join(text, " ")
	return s, ok
}

// splitQuoted splits at spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// search serves /LIST/search?q=….
func (a *Archive) search(w http.ResponseWriter, r *http.Request, l lists.List) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	data := map[string]any{"Title": "Search " + l.Address, "List": l, "Q": q}
	if q == "" {
		a.page(w, r, "search.html", data)
		return
	}
	if !utf8.ValidString(q) {
		w.WriteHeader(http.StatusBadRequest)
		data["Q"], data["Error"] = strings.ToValidUTF8(q, "\uFFFD"), "That search is not valid text (UTF-8)."
		a.page(w, r, "search.html", data)
		return
	}
	if len([]rune(q)) > maxQuery {
		w.WriteHeader(http.StatusBadRequest)
		data["Error"] = "That search is too long."
		a.page(w, r, "search.html", data)
		return
	}
	s, ok := parseQuery(q)
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		data["Error"] = "Dates are written YYYY-MM-DD, as in after:2026-01-31."
		a.page(w, r, "search.html", data)
		return
	}
	if a.fresh(w, r, l, "search:"+q) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), searchTime)
	defer cancel()
	es, err := archive.Search(ctx, a.o.DB, l.ID, s, searchResults+1)
	if err != nil && ctx.Err() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		data["Error"] = "That search took too long; narrow it down (a longer word, from:, a date range)."
		a.page(w, r, "search.html", data)
		return
	}
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if len(es) > searchResults {
		es, data["More"] = es[:searchResults], true
	}
	data["Results"] = es
	a.page(w, r, "search.html", data)
}
