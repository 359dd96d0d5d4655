package web

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/mbox"
	"github.com/parley-list/parley/internal/members"
)

// threadsPerPage is how many threads a list page shows.
const threadsPerPage = 50

// index lists the lists whose archives are public.
func (a *Archive) index(w http.ResponseWriter, r *http.Request) {
	all, err := lists.All(r.Context(), a.o.DB)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	type row struct {
		lists.List
		Posts int64
		Last  time.Time
	}
	member := map[int64]bool{} // the private lists the visitor may read
	if v := a.session(r); v != "" {
		logins, err := members.ArchiveLogins(r.Context(), a.o.DB, v)
		if err != nil {
			a.failed(w, r, err)
			return
		}
		for _, x := range logins {
			member[x.ListID] = true
		}
		w.Header().Set("Vary", "Cookie")
	}
	var rows []row
	for _, l := range all {
		if l.Archive != lists.ArchivePublic && !member[l.ID] {
			continue
		}
		last, err := a.lastPost(r.Context(), l)
		if err != nil {
			a.failed(w, r, err)
			return
		}
		rows = append(rows, row{List: l, Posts: l.NextArticle - 1, Last: last})
	}
	w.Header().Set("Cache-Control", "no-cache")
	a.page(w, r, "index.html", map[string]any{"Title": "Lists", "Lists": rows})
}

// listPage shows a list's threads by latest activity, newest first,
// paged with ?before=ARTICLE.
func (a *Archive) listPage(w http.ResponseWriter, r *http.Request, l lists.List) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if a.fresh(w, r, l, "list"+strconv.FormatInt(before, 10)) {
		return
	}
	ts, err := archive.Threads(r.Context(), a.o.DB, l.ID, max(before, 0), threadsPerPage+1)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	var older int64
	if len(ts) > threadsPerPage {
		ts = ts[:threadsPerPage]
		older = ts[len(ts)-1].LastArticle
	}
	a.page(w, r, "list.html", map[string]any{"Title": l.Address, "List": l, "Threads": ts, "Older": older,
		"Months": months(l)})
}

// months are the links of the month index: from the list's creation to
// now, newest first.
func months(l lists.List) []time.Time {
	var ms []time.Time
	now := time.Now().UTC()
	first := time.Date(l.CreatedAt.Year(), l.CreatedAt.Month(), 1, 0, 0, 0, 0, time.UTC)
	for m := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC); !m.Before(first) && len(ms) < 600; m = m.AddDate(0, -1, 0) {
		ms = append(ms, m)
	}
	return ms
}

// monthLimit bounds the posts of one month a page or mbox holds.
const monthLimit = 10000

// month serves /LIST/YYYY/MM/ (the month's posts by thread) and its mbox.
func (a *Archive) month(w http.ResponseWriter, r *http.Request, l lists.List, y, m, what string) {
	year, _ := strconv.Atoi(y)
	mon, _ := strconv.Atoi(m)
	from := time.Date(year, time.Month(mon), 1, 0, 0, 0, 0, time.UTC)
	if what != "" && what != "mbox" && what != "mbox.gz" {
		a.notFound(w)
		return
	}
	if a.fresh(w, r, l, "month"+y+m+what) {
		return
	}
	es, err := archive.Between(r.Context(), a.o.DB, l.ID, from, from.AddDate(0, 1, 0), monthLimit)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if what != "" {
		a.mbox(w, r, l, fmt.Sprintf("%s-%s-%s", l.Address, y, m), es, what == "mbox.gz")
		return
	}
	a.page(w, r, "month.html", map[string]any{"Title": l.Address + ", " + from.Format("January 2006"), "List": l,
		"Month": from, "Posts": nested(es, true)})
}

// thread serves /LIST/t/N/, its mbox and its Atom feed.
func (a *Archive) thread(w http.ResponseWriter, r *http.Request, l lists.List, n, what string) {
	id, err := strconv.ParseInt(n, 10, 64)
	if err != nil || id < 1 || (what != "" && what != "mbox" && what != "mbox.gz" && what != "atom.xml") {
		a.notFound(w)
		return
	}
	if a.fresh(w, r, l, "thread"+n+what) {
		return
	}
	es, err := archive.Thread(r.Context(), a.o.DB, l.ID, id)
	if a.missing(w, r, err) {
		return
	}
	switch what {
	case "mbox", "mbox.gz":
		a.mbox(w, r, l, fmt.Sprintf("%s-thread-%d", l.Address, id), es, what == "mbox.gz")
		return
	case "atom.xml":
		a.threadFeed(w, r, l, es)
		return
	}
	posts, err := a.withBodies(r, l, nested(es, false))
	if err != nil {
		a.failed(w, r, err)
		return
	}
	a.page(w, r, "thread.html", map[string]any{"Title": es[0].Subject, "List": l, "ThreadID": id, "Posts": posts, "ThreadFeed": "atom.xml"})
}

// message serves /LIST/m/MESSAGE-ID/ and its raw bytes.
func (a *Archive) message(w http.ResponseWriter, r *http.Request, l lists.List, msgid, what string) {
	part, _ := strconv.Atoi(what)
	if what != "" && what != "raw" && (part < 1 || strconv.Itoa(part) != what) {
		a.notFound(w)
		return
	}
	if a.fresh(w, r, l, "m"+what+msgid) {
		return
	}
	m, err := archive.ByMessageID(r.Context(), a.o.DB, l.ID, msgid)
	if a.missing(w, r, err) {
		return
	}
	if part > 0 {
		a.attachment(w, r, m.Raw, part)
		return
	}
	if what == "raw" {
		// The stored bytes, as text: never as HTML, whatever they hold.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(m.Raw)))
		if r.Method != http.MethodHead {
			w.Write(m.Raw)
		}
		return
	}
	thread, err := archive.Thread(r.Context(), a.o.DB, l.ID, m.ThreadID)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	prev, next, err := archive.Adjacent(r.Context(), a.o.DB, l.ID, m.Article)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	tree := nested(thread, false)
	i := slices.IndexFunc(tree, func(p post) bool { return p.Article == m.Article })
	data := map[string]any{"Title": m.Subject, "List": l, "Post": post{Entry: m.Entry, Body: renderBody(m.Raw, msgURL(l, m.MessageID))},
		"Thread": tree, "PrevDate": prev, "NextDate": next}
	if i >= 0 {
		data["Parent"] = tree[i].ParentMsgID
		if i > 0 {
			data["PrevThread"] = tree[i-1].MessageID
		}
		if i+1 < len(tree) {
			data["NextThread"] = tree[i+1].MessageID
		}
	}
	a.page(w, r, "message.html", data)
}

// mbox writes posts as an mboxrd file, gzipped when asked.
func (a *Archive) mbox(w http.ResponseWriter, r *http.Request, l lists.List, name string, es []archive.Entry, gz bool) {
	arts := make([]int64, len(es))
	for i, e := range es {
		arts[i] = e.Article
	}
	filename := strings.NewReplacer("@", "_", "/", "_").Replace(name) + ".mbox"
	var out io.Writer = w
	switch {
	case gz:
		w.Header().Set("Content-Type", "application/gzip")
		filename += ".gz"
	case strings.Contains(r.Header.Get("Accept-Encoding"), "gzip"):
		// The same file, compressed on the way.
		w.Header().Set("Content-Type", "application/mbox")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz = true
	default:
		w.Header().Set("Content-Type", "application/mbox")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	if r.Method == http.MethodHead {
		return
	}
	if gz {
		z := gzip.NewWriter(w)
		defer z.Close()
		out = z
	}
	mw := mbox.NewWriter(out)
	err := archive.Raws(r.Context(), a.o.DB, l.ID, arts, func(sender string, at time.Time, raw []byte) error {
		return mw.Write(sender, at, raw)
	})
	if err == nil {
		err = mw.Flush()
	}
	if err != nil {
		// Headers are gone: the download ends short, and is logged.
		a.o.Log.Warn("mbox download cut short", "event", "web_error", "list", l.Address, "err", err)
	}
}

// msgURL is the permalink path of a post.
func msgURL(l lists.List, msgid string) string { return lists.WebMessagePath(l, msgid) }

// inlineTypes are the attachments a browser may show in the page's
// place: images of common types, which carry no script (SVG does).
var inlineTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// attachment serves the n-th listed part of a post: an image of a safe
// type as itself, anything else as a download of opaque bytes, so that
// nothing a post carries is ever shown as HTML in the archive's origin.
func (a *Archive) attachment(w http.ResponseWriter, r *http.Request, raw []byte, n int) {
	att, data, ok := mailmsg.AttachmentData(raw, n)
	if !ok {
		a.notFound(w)
		return
	}
	name := att.Name
	if name == "" {
		name = fmt.Sprintf("part-%d", n)
	}
	disp := "attachment"
	if inlineTypes[att.Type] {
		w.Header().Set("Content-Type", att.Type)
		disp = "inline"
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// missing answers a read that failed: the 404 when there is no such post
// or thread, else the failure. It reports whether it answered.
func (a *Archive) missing(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, archive.ErrNoArticle):
		a.notFound(w)
	default:
		a.failed(w, r, err)
	}
	return true
}
