// Package web owns the archive on the web: read-only pages for each list
// whose archive is public (its threads, a thread, a post by its
// Message-ID, a month), the raw bytes and mboxrd downloads, and Atom and
// RSS feeds, rendered on the server from PostgreSQL with no JavaScript.
//
// It owns no table. It reads lists (lists.Get, lists.All) and the archive
// through internal/archive's browsing reads.
//
// Everything shown comes from hostile mail, so nothing is trusted: pages
// come from html/template, which escapes every value; a post's text is
// escaped line by line before links and quotes are marked up (body.go);
// HTML-only posts are shown as the text they hold (mailmsg.Readable),
// never as HTML; every answer carries a strict Content-Security-Policy
// (no script at all, no remote images) and nosniff. A private list's
// archive gives exactly the 404 of a list that does not exist, on every
// URL.
//
// Readers poll: pages and feeds answer with an ETag made from the list's
// article counter, and a conditional request is answered 304 before
// anything is read but the list row.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/connlimit"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/members"
)

// Options configure the web archive.
type Options struct {
	DB  *sqlx.DB
	Log *slog.Logger
	// BaseURL is the archive's public URL (http.base_url), for feeds and
	// links that leave the page; "" uses the request's host.
	BaseURL string
	// QueryTimeout bounds each request's reads (default 10s).
	QueryTimeout time.Duration
	// Secret signs members' session cookies (unsub.Secret "web"); nil:
	// nobody can log in, and private lists are never shown.
	Secret []byte
	// FailedLoginDelay is how long a failed login waits for its answer
	// (default 1s).
	FailedLoginDelay time.Duration
	// Templates is a directory of the site's own page templates (*.html),
	// each replacing the built-in one of the same name (or a {{define}}
	// in it: "head", "foot", "body"); "" none.
	Templates string
	// SecureCookies marks the login cookie Secure whatever the request
	// came over: the site is HTTPS, maybe through a proxy (http.base_url
	// https://…).
	SecureCookies bool
}

// Archive serves the web archive.
type Archive struct {
	o     Options
	tmpl  *template.Template
	auth  *connlimit.Failures
	cache *pageCache
	lists listCache
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var styleCSS []byte

// New returns the web archive's handler. A site's own templates that do
// not parse are an error, found at start.
func New(o Options) (*Archive, error) {
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 10 * time.Second
	}
	if o.FailedLoginDelay == 0 {
		o.FailedLoginDelay = time.Second
	}
	t := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
	if o.Templates != "" {
		var err error
		if t, err = t.ParseGlob(filepath.Join(o.Templates, "*.html")); err != nil {
			return nil, fmt.Errorf("web templates: %w", err)
		}
	}
	return &Archive{o: o, tmpl: t, auth: connlimit.NewFailures(o.FailedLoginDelay), cache: newPageCache(64 << 20)}, nil
}

// securityHeaders are sent with every answer: no script, no plugin, no
// remote resource, no framing, no sniffing.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// ServeHTTP routes a request. The path's segments are split before they
// are unescaped, so a Message-ID holding "/" (written %2F) is one segment.
func (a *Archive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if len(r.URL.RawQuery) > 2048 || len(r.URL.EscapedPath()) > 2048 {
		http.Error(w, "request too long", http.StatusRequestURITooLong)
		return
	}
	segs, err := segments(r.URL.EscapedPath())
	if err != nil {
		a.notFound(w)
		return
	}
	account := len(segs) == 2 && segs[0] == "_" && (segs[1] == "login" || segs[1] == "logout")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !(account && r.Method == http.MethodPost) {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.QueryTimeout)
	defer cancel()
	r = r.WithContext(context.WithValue(ctx, visitorKey{}, a.cookieSession(r)))
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	switch {
	case account:
		a.account(w, r, segs[1])
	case len(segs) == 1 && segs[0] == "":
		a.index(w, r)
	case len(segs) == 2 && segs[0] == "_" && segs[1] == "style.css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(styleCSS)
	case len(segs) == 1:
		http.Redirect(w, r, "/"+url.PathEscape(segs[0])+"/", http.StatusMovedPermanently)
	default:
		a.inList(w, r, segs)
	}
}

// segments splits an escaped path into its unescaped segments, without
// the leading "/": "/a/b/" is ["a", "b", ""].
func segments(escaped string) ([]string, error) {
	parts := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(u) {
			// No list, thread or Message-ID is named so; and PostgreSQL
			// would refuse the text.
			return nil, errors.New("not UTF-8")
		}
		parts[i] = u
	}
	return parts, nil
}

// inList serves the URLs under /LIST/.
func (a *Archive) inList(w http.ResponseWriter, r *http.Request, segs []string) {
	rest := segs[1:]
	if len(rest) == 3 && rest[0] == "feed" && (rest[2] == "atom.xml" || rest[2] == "rss.xml") {
		a.secretFeed(w, r, segs[0], rest[1], rest[2])
		return
	}
	l, ok := a.list(w, r, segs[0])
	if !ok {
		return
	}
	switch {
	case len(rest) == 1 && rest[0] == "":
		a.listPage(w, r, l)
	case len(rest) == 1 && rest[0] == "search":
		a.search(w, r, l)
	case len(rest) == 1 && (rest[0] == "atom.xml" || rest[0] == "rss.xml"):
		a.listFeed(w, r, l, rest[0])
	case len(rest) == 3 && rest[0] == "t":
		a.thread(w, r, l, rest[1], rest[2])
	case len(rest) == 3 && rest[0] == "m":
		a.message(w, r, l, rest[1], rest[2])
	case len(rest) == 3 && isYear(rest[0]) && isMonth(rest[1]):
		a.month(w, r, l, rest[0], rest[1], rest[2])
	default:
		a.notFound(w)
	}
}

// list finds a list the visitor may read. An unknown list and a private
// one get the same answer, so the web does not tell which lists exist.
func (a *Archive) list(w http.ResponseWriter, r *http.Request, address string) (lists.List, bool) {
	l, err := a.getList(r.Context(), address)
	var ok bool
	if err == nil {
		ok, err = a.readable(r, l)
	}
	switch {
	case err == nil && ok:
		if l.Archive != lists.ArchivePublic {
			// A member's view: never cached by anyone else.
			w.Header().Set("Vary", "Cookie")
			w.Header().Set("Cache-Control", "private, no-cache")
		}
		return l, true
	case err == nil || errs.IsInvalid(err) || errors.Is(err, lists.ErrNotFound):
		a.notFound(w)
	default:
		a.failed(w, r, err)
	}
	return l, false
}

// secretFeed serves a private list's feed to a member's secret URL, and
// the 404 of everything else to anyone else.
func (a *Archive) secretFeed(w http.ResponseWriter, r *http.Request, address, token, name string) {
	l, err := lists.Get(r.Context(), a.o.DB, address)
	if err != nil {
		a.notFound(w)
		return
	}
	id, err := members.ByFeedToken(r.Context(), a.o.DB, token)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if id != l.ID {
		a.notFound(w)
		return
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	a.listFeed(w, r, l, name)
}

func isYear(s string) bool { n, err := strconv.Atoi(s); return err == nil && len(s) == 4 && n >= 1970 }
func isMonth(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && len(s) == 2 && n >= 1 && n <= 12
}

// notFound is the one 404 of the web archive, whatever was not found.
func (a *Archive) notFound(w http.ResponseWriter) {
	for _, h := range []string{"ETag", "Last-Modified", "Vary"} {
		w.Header().Del(h)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	a.tmpl.ExecuteTemplate(w, "notfound.html", nil)
}

// failed answers an internal failure, logged, without its details.
func (a *Archive) failed(w http.ResponseWriter, r *http.Request, err error) {
	a.o.Log.Error("web archive request failed", "event", "web_error", "path", r.URL.Path, "err", err)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "the archive is not available just now; try again shortly", http.StatusServiceUnavailable)
}

// fresh sets the validators of a list's pages and reports whether the
// client's copy is current (then it has answered 304). Every page of a
// list changes only when a post arrives, which moves the list's counter.
func (a *Archive) fresh(w http.ResponseWriter, r *http.Request, l lists.List, kind string) bool {
	etag := fmt.Sprintf(`W/"%s-%d-%d-%s"`, renderVersion, l.UIDValidity, l.NextArticle, kind)
	w.Header().Set("ETag", etag)
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-cache")
	}
	last, err := a.lastPost(r.Context(), l)
	if err == nil && !last.IsZero() {
		w.Header().Set("Last-Modified", last.UTC().Format(http.TimeFormat))
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagMatch(inm, etag) {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
		return false
	}
	if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !last.IsZero() && !last.Truncate(time.Second).After(ims) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	return a.fromCache(w, r, etag)
}

// renderVersion changes when the pages change shape, so that a client's
// cached copy made by an older parley is not taken for current.
const renderVersion = "w1"

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// page renders a template as the answer. Every page's data is a map,
// given the visitor (for the login or logout link) here.
func (a *Archive) page(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	if v := a.session(r); v != "" {
		data["Visitor"], data["CSRF"] = v, a.csrf(r)
	}
	data["Path"] = r.URL.Path
	var b strings.Builder
	if err := a.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		a.failed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	a.keep(w, r, "text/html; charset=utf-8", []byte(b.String()))
	if r.Method == http.MethodHead {
		return
	}
	w.Write([]byte(b.String()))
}
