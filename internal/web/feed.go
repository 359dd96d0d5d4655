package web

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailmsg"
)

// feedEntries is how many posts a list's feed holds.
const feedEntries = 50

// Atom 1.0 (RFC 4287), as encoding/xml writes it.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  *atomPerson `xml:"author,omitempty"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomPerson struct {
	Name  string `xml:"name"`
	Email string `xml:"email,omitempty"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type atomEntry struct {
	ID      string     `xml:"id"`
	Title   string     `xml:"title"`
	Updated string     `xml:"updated"`
	Author  atomPerson `xml:"author"`
	Links   []atomLink `xml:"link"`
	Summary atomText   `xml:"summary"`
}

// RSS 2.0, for older readers.
type rssFeed struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title       string    `xml:"title"`
	Link        string    `xml:"link"`
	Description string    `xml:"description"`
	LastBuild   string    `xml:"lastBuildDate,omitempty"`
	Items       []rssItem `xml:"item"`
}

type rssItem struct {
	Title       string  `xml:"title"`
	Link        string  `xml:"link"`
	GUID        rssGUID `xml:"guid"`
	PubDate     string  `xml:"pubDate"`
	Author      string  `xml:"author,omitempty"`
	Description string  `xml:"description"`
}

type rssGUID struct {
	IsPermaLink bool   `xml:"isPermaLink,attr"`
	Text        string `xml:",chardata"`
}

// base is the archive's absolute URL: http.base_url, else the request's.
func (a *Archive) base(r *http.Request) string {
	if a.o.BaseURL != "" {
		return strings.TrimSuffix(a.o.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// listFeed serves /LIST/atom.xml and /LIST/rss.xml: the newest posts.
func (a *Archive) listFeed(w http.ResponseWriter, r *http.Request, l lists.List, name string) {
	if a.fresh(w, r, l, name) {
		return
	}
	es, err := archive.Newest(r.Context(), a.o.DB, l.ID, feedEntries)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if name == "rss.xml" {
		a.rss(w, r, l, es)
		return
	}
	self := a.base(r) + "/" + url.PathEscape(l.Address) + "/atom.xml"
	a.atom(w, r, l, l.Address+feedTitle(l), self, es)
}

// threadFeed serves /LIST/t/N/atom.xml: a thread's posts, newest first.
func (a *Archive) threadFeed(w http.ResponseWriter, r *http.Request, l lists.List, es []archive.Entry) {
	newest := make([]archive.Entry, 0, min(len(es), feedEntries))
	for i := len(es) - 1; i >= 0 && len(newest) < feedEntries; i-- {
		newest = append(newest, es[i])
	}
	self := fmt.Sprintf("%s/%s/t/%d/atom.xml", a.base(r), url.PathEscape(l.Address), es[0].ThreadID)
	a.atom(w, r, l, es[0].Subject+" ("+l.Address+")", self, newest)
}

func feedTitle(l lists.List) string {
	if l.DisplayName != "" {
		return " — " + l.DisplayName
	}
	return ""
}

func (a *Archive) atom(w http.ResponseWriter, r *http.Request, l lists.List, title, self string, es []archive.Entry) {
	base := a.base(r)
	f := atomFeed{ID: self, Title: mailmsg.Clean(title, 300), Updated: time.Unix(0, 0).UTC().Format(time.RFC3339),
		Links: []atomLink{{Href: self, Rel: "self", Type: "application/atom+xml"},
			{Href: base + "/" + url.PathEscape(l.Address) + "/", Rel: "alternate", Type: "text/html"}},
		Author: &atomPerson{Name: l.Address}}
	for i, e := range es {
		if i == 0 {
			f.Updated = e.ReceivedAt.UTC().Format(time.RFC3339)
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:      base + msgURL(l, e.MessageID),
			Title:   orNoSubject(e.Subject),
			Updated: e.ReceivedAt.UTC().Format(time.RFC3339),
			Author:  atomPerson{Name: author(e)},
			Links:   []atomLink{{Href: base + msgURL(l, e.MessageID), Rel: "alternate", Type: "text/html"}},
			Summary: atomText{Type: "text", Text: a.summary(r, l, e)},
		})
	}
	a.writeXML(w, r, "application/atom+xml; charset=utf-8", f)
}

func (a *Archive) rss(w http.ResponseWriter, r *http.Request, l lists.List, es []archive.Entry) {
	base := a.base(r)
	c := rssChannel{Title: mailmsg.Clean(l.Address+feedTitle(l), 300), Link: base + "/" + url.PathEscape(l.Address) + "/",
		Description: orDefault(mailmsg.Clean(l.Description, 1000), "The archive of "+l.Address)}
	for i, e := range es {
		if i == 0 {
			c.LastBuild = e.ReceivedAt.UTC().Format(time.RFC1123Z)
		}
		link := base + msgURL(l, e.MessageID)
		c.Items = append(c.Items, rssItem{Title: orNoSubject(e.Subject), Link: link, GUID: rssGUID{IsPermaLink: true, Text: link},
			PubDate: e.ReceivedAt.UTC().Format(time.RFC1123Z), Author: author(e), Description: a.summary(r, l, e)})
	}
	a.writeXML(w, r, "application/rss+xml; charset=utf-8", rssFeed{Version: "2.0", Channel: c})
}

// summary is the start of a post's own text, for a feed entry.
func (a *Archive) summary(r *http.Request, l lists.List, e archive.Entry) string {
	raw, err := archive.Raw(r.Context(), a.o.DB, l.ID, e.Article)
	if err != nil {
		return ""
	}
	var own []string
	for _, line := range strings.Split(mailmsg.Readable(raw).Text, "\n") {
		if t := strings.TrimSpace(line); t != "" && !isQuote(t) {
			own = append(own, t)
		}
		if len(own) >= 8 {
			break
		}
	}
	return mailmsg.Clean(strings.Join(own, " "), 500)
}

// writeXML writes a feed. encoding/xml escapes every value, and drops
// nothing: a control byte in a subject is made a space first
// (mailmsg.Clean), since XML 1.0 cannot carry it at all.
func (a *Archive) writeXML(w http.ResponseWriter, r *http.Request, ctype string, v any) {
	out, err := xml.MarshalIndent(v, "", " ")
	if err != nil {
		http.Error(w, "feed unavailable", http.StatusInternalServerError)
		return
	}
	out = append([]byte(xml.Header), out...)
	w.Header().Set("Content-Type", ctype)
	a.keep(w, r, ctype, out)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(out)
}

func author(e archive.Entry) string {
	if e.FromName != "" {
		return mailmsg.Clean(e.FromName, 200)
	}
	return mailmsg.Clean(e.From, 200)
}

func orNoSubject(s string) string { return orDefault(mailmsg.Clean(s, 300), "(no subject)") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
