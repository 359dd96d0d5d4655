package web

import (
	"fmt"
	"html/template"
	"net/url"
	"time"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
)

// funcs are the templates' helpers: URLs built from escaped parts, and
// dates as people read them.
var funcs = template.FuncMap{
	"listURL":   lists.WebPath,
	"msgURL":    msgURL,
	"threadURL": func(l lists.List, id int64) string { return fmt.Sprintf("/%s/t/%d/", url.PathEscape(l.Address), id) },
	"monthURL": func(l lists.List, m time.Time) string {
		return fmt.Sprintf("/%s/%s/", url.PathEscape(l.Address), m.Format("2006/01"))
	},
	"date":      func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04") },
	"day":       func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
	"monthName": func(t time.Time) string { return t.Format("January 2006") },
	"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"author":    author,
	"subject":   orNoSubject,
	"indent":    func(d int) string { return fmt.Sprintf("d%d", d) },
	"replies":   func(posts int) int { return posts - 1 },
	"inc":       func(i int) int { return i + 1 },
	"sent": func(e archive.Entry) time.Time {
		if e.SentAt != nil {
			return *e.SentAt
		}
		return e.ReceivedAt
	},
	"size": func(n int64) string {
		if n < 1024 {
			return fmt.Sprintf("%d bytes", n)
		}
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	},
}
