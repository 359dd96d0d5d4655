package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/net/html"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/mbox"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a database with a public list (dev) holding a thread of
// three posts and a hostile post, and a private list (secret) with one
// post, served by the web archive on a loopback socket.
type fixture struct {
	d   *sqlx.DB
	srv *httptest.Server
}

func newFixture(t testing.TB) *fixture {
	d := pgtest.New(t)
	mk := func(addr string, arch lists.Archive) lists.List {
		a, _ := mailaddr.ParseList(addr)
		l, err := lists.Create(t.Context(), d, a, lists.Settings{Archive: &arch}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	dev, secret := mk("dev@lists.example.org", lists.ArchivePublic), mk("secret@lists.example.org", lists.ArchivePrivate)
	files := mk("files@lists.example.org", lists.ArchivePublic)
	posts := []struct {
		l   lists.List
		raw string
	}{
		{dev, "From: Ann <ann@example.org>\nSubject: Shelving rules\nMessage-ID: <root/1@example.org>\nDate: Mon, 30 Nov 2026 10:00:00 +0000\n\nHow do you shelve comics? See https://example.org/rules.\n"},
		{dev, "From: bob@example.org\nSubject: Re: Shelving rules\nMessage-ID: <r1@example.org>\nIn-Reply-To: <root/1@example.org>\nReferences: <root/1@example.org>\nContent-Type: text/plain; format=flowed\n\nBy author, \nalways.\n\n> How do you shelve comics?\n> line two\n> line three\n> line four\n"},
		{dev, "From: carol@example.org\nSubject: Re: Shelving rules\nMessage-ID: <r2@example.org>\nReferences: <root/1@example.org> <r1@example.org>\n\nAgreed.\n"},
		{dev, "From: \"<script>alert(1)</script>\" <eve@example.net>\nSubject: =?utf-8?q?=3Cimg_src=3Dx_onerror=3Dalert(2)=3E?=\nMessage-ID: <evil@example.net>\nContent-Type: text/html\n\n<html><body><script>alert(3)</script><p onclick=alert(4)>click <a href=\"javascript:alert(5)\">me</a></p><img src=\"https://tracker.example/x.png\"><form action=https://evil.example><input></form><base href=https://evil.example/></body></html>\n"},
		{secret, "From: dan@example.org\nSubject: hidden\nMessage-ID: <hidden@example.org>\n\nsecret\n"},
		{files, "From: ann@example.org\nSubject: files\nMessage-ID: <files@example.org>\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n" +
			"--b\nContent-Type: image/png; name=logo.png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n" +
			"--b\nContent-Type: text/html; name=page.html\nContent-Disposition: attachment; filename=\"page.html\"\n\n<script>alert(1)</script>\n" +
			"--b\nContent-Type: image/svg+xml; name=x.svg\n\n<svg onload=alert(1)/>\n--b--\n"},
	}
	for _, p := range posts {
		raw := mailmsg.Canonicalize([]byte(p.raw))
		sum, err := mailmsg.Parse(raw, "h", mailmsg.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: p.l.ID, Raw: raw, Summary: sum, Source: "smtp", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := web.New(web.Options{DB: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Secret: []byte("0123456789abcdef0123456789abcdef"), FailedLoginDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &fixture{d: d, srv: srv}
}

// get fetches path with the given request headers.
func (f *fixture) get(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func msgPath(list, id string) string {
	return "/" + list + "/m/" + url.PathEscape(id) + "/"
}

func TestPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		path  string
		wants []string
	}{
		{"/", []string{"dev@lists.example.org", "4 posts", "/dev@lists.example.org/atom.xml"}},
		{"/dev@lists.example.org/", []string{"Shelving rules", "Ann", `type="application/atom+xml"`, "By month"}},
		{"/dev@lists.example.org/t/1/", []string{`class="post d0"`, `class="post d1"`, `class="post d2"`, "By author, always.", "<details", "4 quoted lines",
			`<a href="https://example.org/rules" rel="nofollow noopener noreferrer">https://example.org/rules</a>`}},
		{msgPath("dev@lists.example.org", "root/1@example.org"), []string{"How do you shelve comics?", "next by date", "the whole thread"}},
		{msgPath("dev@lists.example.org", "r1@example.org"), []string{"in reply to", "previous in thread", "next in thread"}},
		{"/dev@lists.example.org/" + time.Now().UTC().Format("2006/01") + "/", []string{"Shelving rules", "mbox"}},
	} {
		resp, body := f.get(t, tc.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, resp.StatusCode)
			continue
		}
		for _, want := range tc.wants {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s lacks %q", tc.path, want)
			}
		}
		if strings.Contains(body, "secret@") || strings.Contains(body, "hidden") {
			t.Errorf("GET %s shows the private list", tc.path)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers %v", tc.path, resp.Header)
		}
	}
}

func TestDownloads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, raw := f.get(t, msgPath("dev@lists.example.org", "evil@example.net")+"raw")
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || !strings.Contains(raw, "<script>alert(3)</script>") {
		t.Errorf("raw: %s\n%s", ct, raw)
	}
	for _, path := range []string{"/dev@lists.example.org/t/1/mbox", "/dev@lists.example.org/t/1/mbox.gz", "/dev@lists.example.org/t/1/mbox?gzip"} {
		var resp *http.Response
		var body string
		if strings.HasSuffix(path, "?gzip") {
			resp, body = f.get(t, strings.TrimSuffix(path, "?gzip"), "Accept-Encoding", "gzip")
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Errorf("mbox asked gzipped: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
		} else {
			resp, body = f.get(t, path)
		}
		var r io.Reader = strings.NewReader(body)
		if strings.HasSuffix(path, ".gz") || strings.HasSuffix(path, "?gzip") {
			z, err := gzip.NewReader(r)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			r = z
		}
		mr := mbox.NewReader(r, mbox.MboxRD, 1<<20)
		n := 0
		for {
			if _, err := mr.Next(); err != nil {
				break
			}
			n++
		}
		if n != 3 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("%s: %d messages, disposition %q; want 3, attachment", path, n, resp.Header.Get("Content-Disposition"))
		}
	}
}

// TestHostilePost: a post written to attack its readers shows as text:
// no element or attribute of its own reaches the page.
func TestHostilePost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{msgPath("dev@lists.example.org", "evil@example.net"), "/dev@lists.example.org/", "/dev@lists.example.org/t/4/"} {
		_, body := f.get(t, path)
		if bad := hostileMarkup(body); bad != "" {
			t.Errorf("%s carries %s", path, bad)
		}
	}
	for _, path := range []string{"/dev@lists.example.org/atom.xml", "/dev@lists.example.org/rss.xml"} {
		if _, body := f.get(t, path); strings.Contains(body, "<img") || strings.Contains(body, "<script") {
			t.Errorf("%s carries markup of the post", path)
		}
	}
	_, body := f.get(t, msgPath("dev@lists.example.org", "evil@example.net"))
	if !strings.Contains(body, "click") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the hostile post's text and author are not shown, escaped:\n%s", body)
	}
}

// TestPrivateIsNotFound: every URL of a private list answers exactly as
// the same URL of a list that does not exist.
func TestPrivateIsNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, shape := range []string{"/%s/", "/%s/atom.xml", "/%s/rss.xml", "/%s/t/1/", "/%s/t/1/mbox", "/%s/t/1/atom.xml",
		"/%s/m/hidden@example.org/", "/%s/m/hidden@example.org/raw", "/%s/2026/12/", "/%s/2026/12/mbox", "/%s/nothing"} {
		secret, none := fmt.Sprintf(shape, "secret@lists.example.org"), fmt.Sprintf(shape, "nosuch@lists.example.org")
		r1, b1 := f.get(t, secret)
		r2, b2 := f.get(t, none)
		if r1.StatusCode != http.StatusNotFound || r1.StatusCode != r2.StatusCode || b1 != b2 ||
			r1.Header.Get("Content-Type") != r2.Header.Get("Content-Type") || r1.Header.Get("ETag") != "" {
			t.Errorf("%s: %d %q vs %s: %d %q", secret, r1.StatusCode, r1.Header, none, r2.StatusCode, r2.Header)
		}
	}
}

// TestConditional: a second fetch with the validators is 304 and empty;
// a new post changes the validator.
func TestConditional(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"/dev@lists.example.org/", "/dev@lists.example.org/atom.xml", "/dev@lists.example.org/t/1/"} {
		resp, _ := f.get(t, path)
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		if etag == "" || lm == "" {
			t.Fatalf("%s: ETag %q, Last-Modified %q", path, etag, lm)
		}
		if r, b := f.get(t, path, "If-None-Match", etag); r.StatusCode != http.StatusNotModified || b != "" {
			t.Errorf("%s with If-None-Match: %d, %d bytes", path, r.StatusCode, len(b))
		}
		if r, b := f.get(t, path, "If-Modified-Since", lm); r.StatusCode != http.StatusNotModified || b != "" {
			t.Errorf("%s with If-Modified-Since: %d, %d bytes", path, r.StatusCode, len(b))
		}
	}
	resp, _ := f.get(t, "/dev@lists.example.org/atom.xml")
	raw := mailmsg.Canonicalize([]byte("From: ann@example.org\nSubject: new\nMessage-ID: <new@example.org>\n\nnew\n"))
	sum, _ := mailmsg.Parse(raw, "h", mailmsg.Limits{})
	l, _ := lists.Get(t.Context(), f.d, "dev@lists.example.org")
	if _, err := archive.Insert(t.Context(), f.d, archive.Post{ListID: l.ID, Raw: raw, Summary: sum, Source: "smtp", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The list row is reused for a second (listTTL): the new post shows
	// within it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _ := f.get(t, "/dev@lists.example.org/atom.xml", "If-None-Match", resp.Header.Get("ETag"))
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a new post: still %d, want 200", r.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFeeds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var atom struct {
		ID      string `xml:"id"`
		Entries []struct {
			ID, Title, Updated string
			Author             struct{ Name string } `xml:"author"`
			Link               struct {
				Href string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	resp, body := f.get(t, "/dev@lists.example.org/atom.xml")
	if err := xml.Unmarshal([]byte(body), &atom); err != nil || resp.Header.Get("Content-Type") != "application/atom+xml; charset=utf-8" {
		t.Fatalf("atom: %v %s", err, resp.Header.Get("Content-Type"))
	}
	if len(atom.Entries) != 4 || !strings.HasSuffix(atom.Entries[3].Link.Href, "/dev@lists.example.org/m/root%2F1@example.org/") {
		t.Errorf("atom entries: %+v", atom.Entries)
	}
	var rss struct {
		Channel struct {
			Items []struct{ Title, Link, GUID string } `xml:"item"`
		} `xml:"channel"`
	}
	if _, body := f.get(t, "/dev@lists.example.org/rss.xml"); xml.Unmarshal([]byte(body), &rss) != nil || len(rss.Channel.Items) != 4 {
		t.Errorf("rss: %s", body)
	}
	if _, body := f.get(t, "/dev@lists.example.org/t/1/atom.xml"); strings.Count(body, "<entry>") != 3 {
		t.Errorf("thread feed:\n%s", body)
	}
	if !bytes.Contains([]byte(body), []byte("<?xml")) {
		t.Error("the feed has no XML declaration")
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, err := http.Post(f.srv.URL+"/dev@lists.example.org/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// hostileMarkup returns the first element or attribute in page that did
// not come from parley's own templates: a script, an image, a form, a
// base, an event handler, a javascript: link. "" when there is none.
func hostileMarkup(page string) string {
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "script", "img", "form", "input", "base", "iframe", "object", "embed", "svg", "style":
				return "<" + tok.Data + ">"
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" ||
					(a.Key == "href" || a.Key == "src") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					return a.Key + "=" + a.Val
				}
			}
		}
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		q      string
		code   int
		finds  []string
		misses []string
	}{
		{"comics", 200, []string{"Shelving rules"}, nil},
		{"from:bob", 200, []string{"Re: Shelving rules"}, []string{">Shelving rules<"}},
		{`subject:"shelving rules" after:2000-01-01`, 200, []string{"Shelving rules"}, nil},
		{"agreed before:2000-01-01", 200, []string{"Nothing found."}, nil},
		{"hidden", 200, []string{"Nothing found."}, nil},
		{"after:yesterday", 400, []string{"YYYY-MM-DD"}, nil},
		{strings.Repeat("x", 501), 400, []string{"too long"}, nil},
		{`<script>alert(1)</script>`, 200, []string{"&lt;script&gt;"}, []string{"<script>"}},
	} {
		resp, body := f.get(t, "/dev@lists.example.org/search?q="+url.QueryEscape(tc.q))
		if resp.StatusCode != tc.code {
			t.Errorf("search %q: %d, want %d", tc.q, resp.StatusCode, tc.code)
		}
		for _, want := range tc.finds {
			if !strings.Contains(body, want) {
				t.Errorf("search %q lacks %q", tc.q, want)
			}
		}
		for _, not := range tc.misses {
			if strings.Contains(body, not) {
				t.Errorf("search %q has %q", tc.q, not)
			}
		}
	}
	if r, _ := f.get(t, "/secret@lists.example.org/search?q=secret"); r.StatusCode != http.StatusNotFound {
		t.Errorf("searching a private list: %d", r.StatusCode)
	}
}

// TestAttachments: an image of a common type is shown as itself; any
// other part (HTML, SVG) only downloads, as opaque bytes.
func TestAttachments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := msgPath("files@lists.example.org", "files@example.org")
	_, page := f.get(t, base)
	if !strings.Contains(page, `href="`+base+`1">logo.png</a>`) || !strings.Contains(page, "page.html") {
		t.Errorf("the post's attachments are not linked:\n%s", page)
	}
	for _, tc := range []struct {
		n         string
		ctype, cd string
		body      string
	}{
		{"1", "image/png", "inline; filename=logo.png", "\x89PNG\r\n\x1a\n"},
		{"2", "application/octet-stream", "attachment; filename=page.html", "<script>alert(1)</script>"},
		{"3", "application/octet-stream", "attachment; filename=x.svg", "<svg onload=alert(1)/>"},
	} {
		resp, body := f.get(t, base+tc.n)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype || resp.Header.Get("Content-Disposition") != tc.cd ||
			!strings.HasPrefix(body, tc.body) {
			t.Errorf("part %s: %d %q %q %q", tc.n, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), body)
		}
	}
	if r, _ := f.get(t, base+"4"); r.StatusCode != http.StatusNotFound {
		t.Errorf("a part that is not there: %d", r.StatusCode)
	}
}

// member adds address to list with an archive password and returns the
// member and the password.
func (f *fixture) member(t *testing.T, list, address string) (members.Member, string) {
	t.Helper()
	l, err := lists.Get(t.Context(), f.d, list)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := members.ParseNew(address, "", "")
	if _, err := members.Add(t.Context(), f.d, l.ID, []members.New{n}); err != nil {
		t.Fatal(err)
	}
	m, err := members.Get(t.Context(), f.d, l.ID, address)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := members.NewArchivePassword(t.Context(), f.d, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m, pw
}

// login posts the login form and returns the answer, without following
// its redirect.
func (f *fixture) login(t *testing.T, address, password, next string) *http.Response {
	t.Helper()
	form := url.Values{"address": {address}, "password": {password}, "next": {next}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+"/_/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestPrivateLogin: a member logs in with their archive password and reads
// the private list; a member of another list, a wrong password and a
// forged cookie do not; logout needs the form's token; a member's secret
// feed URL works until it is revoked.
func TestPrivateLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dan, pw := f.member(t, "secret@lists.example.org", "dan@example.org")
	_, otherPW := f.member(t, "dev@lists.example.org", "eve@example.org")

	if r := f.login(t, "dan@example.org", "wrong", "/"); r.StatusCode != http.StatusUnauthorized || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("wrong password: %d %q", r.StatusCode, r.Header.Get("Set-Cookie"))
	}
	r := f.login(t, "dan@example.org", pw, "/secret@lists.example.org/")
	cookie := r.Header.Get("Set-Cookie")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/secret@lists.example.org/" ||
		!strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("login: %d %q %q", r.StatusCode, r.Header.Get("Location"), cookie)
	}
	session := strings.Split(cookie, ";")[0]
	resp, body := f.get(t, "/secret@lists.example.org/t/1/", "Cookie", session)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "secret") || resp.Header.Get("Vary") != "Cookie" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "private") {
		t.Errorf("a member reading the private list: %d %v", resp.StatusCode, resp.Header)
	}
	if _, body := f.get(t, "/", "Cookie", session); !strings.Contains(body, "secret@lists.example.org") || !strings.Contains(body, "Log out") {
		t.Errorf("the index for a member lacks their private list or the logout")
	}
	if r, _ := f.get(t, "/secret@lists.example.org/", "Cookie", session+"x"); r.StatusCode != http.StatusNotFound {
		t.Errorf("a forged cookie: %d", r.StatusCode)
	}
	other := strings.Split(f.login(t, "eve@example.org", otherPW, "/").Header.Get("Set-Cookie"), ";")[0]
	if r, _ := f.get(t, "/secret@lists.example.org/", "Cookie", other); r.StatusCode != http.StatusNotFound {
		t.Errorf("a member of another list: %d", r.StatusCode)
	}
	if r := f.login(t, "dan@example.org", pw, "//evil.example/"); r.Header.Get("Location") != "/" {
		t.Errorf("login redirected off the site: %q", r.Header.Get("Location"))
	}

	logout := func(csrf string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+"/_/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", session)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := logout("forged"); code != http.StatusForbidden {
		t.Errorf("logout without the form's token: %d", code)
	}
	_, page := f.get(t, "/", "Cookie", session)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil || logout(csrf[1]) != http.StatusSeeOther {
		t.Errorf("logout with the form's token failed")
	}

	tok, err := members.NewFeedToken(t.Context(), f.d, dan.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if r, body := f.get(t, "/secret@lists.example.org/feed/"+tok+"/atom.xml"); r.StatusCode != 200 || !strings.Contains(body, "hidden") {
		t.Errorf("the secret feed: %d", r.StatusCode)
	}
	_, none := f.get(t, "/nosuch@lists.example.org/")
	for _, path := range []string{"/secret@lists.example.org/feed/" + tok + "x/atom.xml", "/dev@lists.example.org/feed/" + tok + "/atom.xml"} {
		if r, body := f.get(t, path); r.StatusCode != http.StatusNotFound || body != none {
			t.Errorf("%s: %d", path, r.StatusCode)
		}
	}
	if _, err := members.NewFeedToken(t.Context(), f.d, dan.ID, true); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.get(t, "/secret@lists.example.org/feed/"+tok+"/atom.xml"); r.StatusCode != http.StatusNotFound {
		t.Errorf("a revoked feed: %d", r.StatusCode)
	}
	for range 10 {
		f.login(t, "dan@example.org", "guess", "/")
	}
	if r := f.login(t, "dan@example.org", pw, "/"); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after 10 failures: %d, want 429", r.StatusCode)
	}
}

// TestPageCache: a page asked for again is the same page; a member
// logged in never gets the page kept for anyone, nor is theirs kept.
func TestPageCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, first := f.get(t, "/dev@lists.example.org/")
	_, again := f.get(t, "/dev@lists.example.org/")
	if first != again || !strings.Contains(first, "Members: log in") {
		t.Errorf("the page asked again differs")
	}
	_, pw := f.member(t, "dev@lists.example.org", "ann@example.org")
	session := strings.Split(f.login(t, "ann@example.org", pw, "/").Header.Get("Set-Cookie"), ";")[0]
	if _, mine := f.get(t, "/dev@lists.example.org/", "Cookie", session); !strings.Contains(mine, "ann@example.org") || strings.Contains(mine, "Members: log in") {
		t.Errorf("a member got the anonymous page")
	}
	if _, anon := f.get(t, "/dev@lists.example.org/"); strings.Contains(anon, "ann@example.org") {
		t.Errorf("the member's page was kept for everyone")
	}
}

// TestSiteTemplates: a site's own template replaces the built-in one of
// the same name; one that does not parse stops the start.
func TestSiteTemplates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "foot.html"), []byte(`{{define "foot"}}</main><footer>The Librarians' Network</footer></body></html>{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := pgtest.New(t)
	a, err := web.New(web.Options{DB: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Templates: dir})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !strings.Contains(rec.Body.String(), "The Librarians' Network") {
		t.Errorf("the site's footer is not used:\n%s", rec.Body.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.html"), []byte(`{{define "x"}}{{.Nope`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := web.New(web.Options{DB: d, Templates: dir}); err == nil {
		t.Error("a broken template was accepted")
	}
}

// FuzzRequest: any path and query against the archive (a public list, a
// private one, posts with hostile headers) gets an answer, never a
// panic or a 5xx, and never the private list's posts.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{"/", "/dev@lists.example.org/", "/dev@lists.example.org/t/1/mbox.gz", "/dev@lists.example.org/m/root%2F1@example.org/raw",
		"/dev@lists.example.org/search?q=from:%22a%20b%22+after:2026-01-01", "/secret@lists.example.org/m/hidden@example.org/",
		"/dev@lists.example.org/2026/13/", "/%zz/", "/dev@lists.example.org/m/evil@example.net/9", "/_/login?next=//x"} {
		f.Add(s)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.Parse("http://x" + target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fx.srv.URL+u.RequestURI(), nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return // the client refused the URL
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s: %d\n%s", target, resp.StatusCode, body)
		}
		if strings.Contains(string(body), "secret\n") || strings.Contains(string(body), "Subject: hidden") {
			t.Fatalf("%s shows the private list", target)
		}
	})
}
