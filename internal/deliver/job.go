package deliver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/digest"
	"github.com/parley-list/parley/internal/dkimkeys"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/outqueue"
)

// job is what one outbound job sends (one variant of it, for a digest):
// the same bytes to every recipient, or, with one-click unsubscribe links
// or a footer that names the member, the same bytes but for what is
// personal.
type job struct {
	list     lists.List
	msg      []byte           // signed, the same for every copy
	unsigned []byte           // set when each copy is personalised and signed on its own
	signing  dkimkeys.Signing // the list domain's keys
	footer   string           // a footer template with personal fields, applied per copy
	from     string           // fixed return path (notices); "" means VERP per copy
	msgID    string           // the post's Message-ID, for the log ("" for notices)
	err      error
}

// jobKey names a rendered job: the outbound job, and for a digest the
// copy's variant.
type jobKey struct {
	id      int64
	variant string
}

// job returns the rendered job of a copy, from the cache when an earlier
// round rendered it.
func (s *Service) job(ctx context.Context, d outqueue.Delivery) *job {
	now := time.Now()
	k := jobKey{d.Job, d.Variant}
	if j, ok := s.jobs.get(k, now); ok {
		return j
	}
	j, err := s.loadJob(ctx, k)
	if err != nil {
		s.o.Logger.Error("cannot render job", "event", "render_failed", "job_id", k.id, "err", err)
		return &job{err: err} // not kept: the next round tries again
	}
	s.jobs.put(k, j, now)
	return j
}

func (s *Service) loadJob(ctx context.Context, k jobKey) (*job, error) {
	oj, err := outqueue.GetJob(ctx, s.o.DB, k.id)
	if err != nil {
		return nil, err
	}
	l, err := lists.GetByID(ctx, s.o.DB, oj.ListID)
	if err != nil {
		return nil, err
	}
	j := &job{list: l, msg: oj.Body, from: oj.MailFrom}
	switch oj.Kind {
	case "post":
		err = s.renderPost(ctx, j, oj)
	case "digest":
		err = s.renderDigest(ctx, j, oj, k.variant)
	}
	if err != nil {
		return nil, err
	}
	keys, err := dkimkeys.ForDomain(ctx, s.o.DB, l.Domain)
	if err != nil {
		return nil, err
	}
	if j.signing, err = dkimkeys.Prepare(keys); err != nil {
		return nil, err
	}
	if oj.Kind != "notice" {
		if err := s.addFooter(j); err != nil {
			return nil, err
		}
		if j.footer != "" || (s.o.Site.BaseURL != "" && s.o.Unsub != nil) {
			// Each copy gets its own unsubscribe link or footer, so each
			// is signed on its own (in deliver).
			j.unsigned = j.msg
			return j, nil
		}
	}
	// Every copy of the job is the same message, so it is signed once
	// here, not once per recipient.
	if len(j.signing) > 0 {
		if j.msg, err = j.signing.Sign(j.msg); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// renderPost renders a post job's archived post as members get it.
func (s *Service) renderPost(ctx context.Context, j *job, oj outqueue.Job) error {
	if oj.Message == nil {
		return errors.New("post job without an archived message")
	}
	m, err := archive.Get(ctx, s.o.DB, *oj.Message)
	if err != nil {
		return err
	}
	j.msgID, j.from = m.MessageID, ""
	j.msg, err = RenderPost(m.Raw, j.list, s.o.Site, m.Article, s.rewriteFrom(ctx, j.list, m.From))
	return err
}

// renderDigest renders one variant of a digest issue, with the list's
// headers.
func (s *Service) renderDigest(ctx context.Context, j *job, oj outqueue.Job, variant string) error {
	if oj.Digest == nil {
		return errors.New("digest job without an issue")
	}
	v, err := digest.ParseVariant(variant)
	if err != nil {
		return &Permanent{Msg: err.Error()}
	}
	is, err := digest.Get(ctx, s.o.DB, *oj.Digest)
	if err != nil {
		return err
	}
	posts, err := archive.Articles(ctx, s.o.DB, j.list.ID, is.First, is.Last, is.Listed)
	if err != nil {
		return err
	}
	raw, err := digest.Render(digest.Edition{List: j.list, Issue: is, Posts: posts, Variant: v, ArchiveURL: s.o.Site.ArchiveURL, WebURL: s.o.Site.BaseURL})
	if errors.Is(err, digest.ErrEmpty) {
		return &Permanent{Msg: err.Error()}
	}
	if err != nil {
		return err
	}
	j.from, j.msgID = "", digest.Title(j.list, is)
	j.msg, err = renderDigest(raw, j.list, s.o.Site)
	return err
}

// rewriteFrom decides the list's DMARC mitigation for one post.
func (s *Service) rewriteFrom(ctx context.Context, l lists.List, author string) bool {
	switch l.DMARC {
	case "always":
		return true
	case "never":
		return false
	}
	if s.o.DMARC == nil {
		return false
	}
	at := strings.LastIndexByte(author, '@')
	return at >= 0 && s.o.DMARC.Strict(ctx, author[at+1:])
}

// personal renders and signs one member's copy: their unsubscribe link,
// their footer.
func (s *Service) personal(j *job, d outqueue.Delivery) ([]byte, error) {
	norm := d.Rcpt
	if a, err := mailaddr.Parse(d.Rcpt); err == nil {
		norm = a.String()
	}
	msg := j.unsigned
	url := ""
	if s.o.Site.BaseURL != "" && s.o.Unsub != nil {
		url = strings.TrimRight(s.o.Site.BaseURL, "/") + "/unsubscribe/" + s.o.Unsub.Token(j.list.ID, norm)
		msg = personalize(msg, j.list, url, len(j.signing) > 0)
	}
	if j.footer != "" {
		var err error
		if msg, err = applyFooter(msg, s.footerText(j.list, j.footer, d.Rcpt, url)); err != nil {
			return nil, err
		}
	}
	if len(j.signing) == 0 {
		return msg, nil
	}
	return j.signing.Sign(msg)
}

// jobCache keeps rendered jobs across claim rounds. A round claims at
// most Options.Batch copies, so a post to 10,000 members is sent over
// dozens of rounds; loading, rendering and signing it again for each was
// most of the work of a large fan-out. An entry lives jobTTL, so a changed
// list setting or DKIM key reaches copies claimed after that, and the
// cache holds at most maxCachedJobs entries and maxCachedBytes of messages.
type jobCache struct {
	mu    sync.Mutex
	m     map[jobKey]cachedJob
	bytes int
}

type cachedJob struct {
	j       *job
	expires time.Time
}

const (
	jobTTL         = time.Minute
	maxCachedJobs  = 64
	maxCachedBytes = 64 << 20
)

func (j *job) size() int { return len(j.msg) + len(j.unsigned) }

func (c *jobCache) get(id jobKey, now time.Time) (*job, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.After(e.expires) {
		return nil, false
	}
	return e.j, true
}

// put keeps j, first dropping expired entries and then, while the cache
// is over its bounds, the entry that would expire soonest.
func (c *jobCache) put(id jobKey, j *job, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[jobKey]cachedJob{}
	}
	c.drop(id)
	for k, e := range c.m {
		if now.After(e.expires) {
			c.drop(k)
		}
	}
	for len(c.m) > 0 && (len(c.m) >= maxCachedJobs || c.bytes+j.size() > maxCachedBytes) {
		var first jobKey
		var at time.Time
		for k, e := range c.m {
			if at.IsZero() || e.expires.Before(at) {
				first, at = k, e.expires
			}
		}
		c.drop(first)
	}
	c.m[id] = cachedJob{j: j, expires: now.Add(jobTTL)}
	c.bytes += j.size()
}

func (c *jobCache) drop(id jobKey) {
	if e, ok := c.m[id]; ok {
		c.bytes -= e.j.size()
		delete(c.m, id)
	}
}
