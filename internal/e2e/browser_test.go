package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// hostilePosts are HTML posts written to run script or load things in
// their readers' browsers, each a way mail clients and archives have been
// attacked.
var hostilePosts = []string{
	`<script>alert("script")</script><p>plain script</p>`,
	`<img src=x onerror=alert("onerror")><p>image handler</p>`,
	`<a href="javascript:alert('link')">a javascript: link</a>`,
	`<svg onload=alert("svg")><circle r=5></svg><p>svg</p>`,
	`<meta http-equiv="refresh" content="0;url=https://evil.example/"><p>meta refresh</p>`,
	`<base href="https://evil.example/"><a href="x">base</a>`,
	`<iframe src="https://evil.example/"></iframe><p>iframe</p>`,
	`<form action="https://evil.example/"><input name=p><button>go</button></form><p>form</p>`,
	`<style>body{background:url(https://evil.example/track.png)}</style><p>css</p>`,
	`<img src="https://tracker.example/pixel.png" alt=""><p>remote image</p>`,
	`<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/y"><p>plugins</p>`,
	`<p style="background:url(https://evil.example/z)" onmouseover="alert('hover')">styled</p>`,
}

// browser is headless Chromium, recording what pages do: dialogs,
// console errors, exceptions, and every request that leaves the origin.
type browser struct {
	ctx     context.Context
	origin  string
	mu      sync.Mutex
	events  []string
	outside []string
	shots   string
}

func newBrowser(t *testing.T, origin string) *browser {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (apt-get install chromium); .ci/run installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1024, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	b := &browser{ctx: ctx, origin: origin, shots: filepath.Join(os.TempDir(), "parley-artifacts", t.Name())}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", b.shots)
	err = chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.events = append(b.events, "dialog: "+e.Message)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				b.events = append(b.events, fmt.Sprintf("console %s", e.Type))
			}
		case *runtime.EventExceptionThrown:
			b.events = append(b.events, "exception: "+e.ExceptionDetails.Text)
		case *network.EventRequestWillBeSent:
			if u := e.Request.URL; !strings.HasPrefix(u, b.origin) && !strings.HasPrefix(u, "data:") {
				b.outside = append(b.outside, u)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// visit opens path, saves a screenshot as name, and returns the text of
// the page's main landmark.
func (b *browser) visit(t *testing.T, path, name string) string {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(b.origin+path), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	text, err := chromedp.Run(b.ctx, chromedp.Text("body"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	return text
}

// TestBrowser: a real browser reads the web archive: the index, a list, a
// thread, a post, a search, a private list after logging in; and a corpus
// of hostile HTML posts runs no script, opens no dialog, logs no error
// and makes no request outside the archive's origin.
func TestBrowser(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t)
	const list = "dev@lists.example.org"
	mustRun(t, env, "list", "create", list, "--post-policy", "open", "--name", "Developers")
	mustRun(t, env, "list", "create", "staff@lists.example.org", "--post-policy", "open", "--archive", "private", "--subscribe", "confirm")
	mustRun(t, env, "member", "add", "--quiet", "staff@lists.example.org", "kim@example.org")
	pw := strings.TrimSpace(mustRun(t, env, "member", "password", "staff@lists.example.org", "kim@example.org"))
	p.send("ann@example.org", list, "From: Ann <ann@example.org>\nSubject: Reading lists\nMessage-ID: <rl@example.org>\n\nWhat are your students reading?\nSee https://example.org/list\n")
	p.send("bob@example.org", list, "From: Bob <bob@example.org>\nSubject: Re: Reading lists\nMessage-ID: <rl2@example.org>\nIn-Reply-To: <rl@example.org>\n\nMostly comics.\n\n> What are your students reading?\n")
	for i, h := range hostilePosts {
		p.send("eve@example.net", list, fmt.Sprintf("From: eve@example.net\nSubject: hostile %d\nMessage-ID: <h%d@example.net>\nMIME-Version: 1.0\nContent-Type: text/html\n\n<html><body>%s</body></html>\n", i, i, h))
	}
	p.send("kim@example.org", "staff@lists.example.org", "From: kim@example.org\nSubject: Budget\nMessage-ID: <budget@example.org>\n\nThe budget is tight.\n")
	p.settle()

	b := newBrowser(t, "http://"+s.ready["http"])
	for _, v := range []struct{ path, name, want string }{
		{"/", "index", "Developers"},
		{"/" + list + "/", "list", "Reading lists"},
		{"/" + list + "/t/1/", "thread", "Mostly comics."},
		{"/" + list + "/m/rl2@example.org/", "post", "in reply to"},
		{"/" + list + "/search?q=comics", "search", "Re: Reading lists"},
	} {
		if text := b.visit(t, v.path, v.name); !strings.Contains(text, v.want) {
			t.Errorf("%s: the page does not say %q:\n%s", v.path, v.want, text)
		}
	}
	for i := range hostilePosts {
		text := b.visit(t, "/"+list+"/m/"+url.PathEscape(fmt.Sprintf("h%d@example.net", i))+"/", fmt.Sprintf("hostile-%d", i))
		if !strings.Contains(text, fmt.Sprintf("hostile %d", i)) {
			t.Errorf("hostile post %d is not shown", i)
		}
	}
	b.visit(t, "/"+list+"/t/3/", "hostile-thread")

	if text := b.visit(t, "/staff@lists.example.org/", "private-outsider"); !strings.Contains(text, "Not found") {
		t.Errorf("the private list shows to an outsider:\n%s", text)
	}
	if err := chromedp.Do(b.ctx, chromedp.Navigate(b.origin+"/_/login?next=/staff@lists.example.org/"), chromedp.WaitVisible("#address"),
		chromedp.SendKeys("#address", "kim@example.org"), chromedp.SendKeys("#password", pw),
		chromedp.Click(`button[type=submit]`), chromedp.WaitVisible("table.threads")); err != nil {
		t.Fatal(err)
	}
	after, err := chromedp.Run(b.ctx, chromedp.Text("body"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(after, "Budget") {
		t.Errorf("after logging in, the private list:\n%s", after)
	}
	b.visit(t, "/staff@lists.example.org/", "private-member")

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.events) > 0 {
		t.Errorf("pages ran script or logged errors: %q", b.events)
	}
	if len(b.outside) > 0 {
		t.Errorf("pages made requests outside the archive: %q", b.outside)
	}
	s.stop()
}

// TestFeedReaders: newsboat, a real feed reader, fetches each list's
// Atom and RSS feed and sees every post; the Atom feeds validate against
// the Atom schema (jing); a second fetch with the validators is a 304.
func TestFeedReaders(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"newsboat", "jing"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install %s); .ci/run installs it", tool, tool)
		}
	}
	env, s, p := serveForPeople(t)
	const list = "dev@lists.example.org"
	mustRun(t, env, "list", "create", list, "--post-policy", "open")
	for i := range 7 {
		p.send("ann@example.org", list, fmt.Sprintf("From: Ann <ann@example.org>\nSubject: Post %d & <more>\nMessage-ID: <p%d@example.org>\n\nText %d.\n", i, i, i))
	}
	p.settle()
	base := "http://" + s.ready["http"] + "/" + list + "/"
	dir := t.TempDir()
	for _, feed := range []string{"atom.xml", "rss.xml"} {
		// One reader per feed: newsboat counts an article once, and both
		// feeds name each post by its permalink.
		sub := filepath.Join(dir, feed)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		urls := filepath.Join(sub, "urls")
		if err := os.WriteFile(urls, []byte(base+feed+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "config"), []byte("reload-threads 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("newsboat", "-u", urls, "-c", filepath.Join(sub, "cache.db"), "-C", filepath.Join(sub, "config"), "-x", "reload", "print-unread")
		cmd.Env = append(os.Environ(), "HOME="+sub)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("newsboat %s: %v\n%s", feed, err, out)
		}
		if m := regexp.MustCompile(`(\d+) unread articles`).FindStringSubmatch(string(out)); m == nil || m[1] != "7" {
			t.Errorf("newsboat read %s as %q, want 7 unread articles", feed, out)
		}
	}
	for _, feed := range []string{base + "atom.xml", base + "t/1/atom.xml"} {
		file := filepath.Join(dir, "feed.xml")
		body := fetchBody(t, feed)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		schema, _ := filepath.Abs("../../testdata/atom/atom.rnc")
		if out, err := exec.Command("jing", "-c", schema, file).CombinedOutput(); err != nil {
			t.Errorf("%s does not validate: %v\n%s", feed, err, out)
		}
	}
	s.stop()
}
