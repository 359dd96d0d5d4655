package archive

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/imapmeta"
	"github.com/parley-list/parley/internal/mailmsg"
)

// Entry is an archived post without its bytes.
type Entry struct {
	ID         int64          `db:"id"`
	Article    int64          `db:"article"`
	MessageID  string         `db:"message_id"`
	ThreadID   int64          `db:"thread_id"`
	Refs       pq.StringArray `db:"refs"`
	Subject    string         `db:"subject"`
	From       string         `db:"from_addr"`
	FromName   string         `db:"from_name"`
	SentAt     *time.Time     `db:"sent_at"`
	ReceivedAt time.Time      `db:"received_at"`
	Size       int64          `db:"size"`
	Lines      int64          `db:"lines"` // the body's
}

// Entries returns a list's posts in article order, those received at or
// after since when since is not zero.
func Entries(ctx context.Context, q db.Querier, listID int64, since time.Time) ([]Entry, error) {
	var es []Entry
	err := q.SelectContext(ctx, &es, `
		SELECT `+entryCols+`
		  FROM messages WHERE list_id = $1 AND received_at >= $2 ORDER BY article`, listID, since)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return es, nil
}

// ErrNoArticle says an article number is not in the archive.
var ErrNoArticle = fmt.Errorf("no such article")

// Raw returns one post's bytes.
func Raw(ctx context.Context, q db.Querier, listID, article int64) ([]byte, error) {
	var raw []byte
	err := q.GetContext(ctx, &raw, `SELECT raw FROM messages WHERE list_id = $1 AND article = $2`, listID, article)
	if db.IsNoRows(err) {
		return nil, errs.Kindf(ErrNoArticle, "no article %d", article)
	}
	return raw, err
}

// Parents maps each article to the article it replies to: the nearest
// ancestor in its References that is in the archive (so a reply whose
// direct parent never arrived hangs under the grandparent). Parent links
// that would form a cycle (forged or looping References) are cut, so the
// result is always a forest.
func Parents(es []Entry) map[int64]int64 {
	first := make(map[string]int64, len(es))
	for _, e := range es {
		if _, ok := first[e.MessageID]; !ok {
			first[e.MessageID] = e.Article
		}
	}
	parent := make(map[int64]int64, len(es))
	for _, e := range es {
		for i := len(e.Refs) - 1; i >= 0; i-- {
			if a, ok := first[e.Refs[i]]; ok && a != e.Article {
				parent[e.Article] = a
				break
			}
		}
	}
	breakCycles(es, parent)
	return parent
}

// breakCycles walks each parent chain once, iteratively, marking nodes as
// in progress and done; reaching a node in progress means a cycle, which is
// cut by removing the link that closed it.
func breakCycles(es []Entry, parent map[int64]int64) {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[int64]int, len(es))
	for _, e := range es {
		var path []int64
		prev := int64(0)
		for n := e.Article; ; {
			if state[n] == done {
				break
			}
			if state[n] == active {
				delete(parent, prev)
				break
			}
			state[n] = active
			path = append(path, n)
			p, ok := parent[n]
			if !ok {
				break
			}
			prev, n = n, p
		}
		for _, n := range path {
			state[n] = done
		}
	}
}

// Rethread rebuilds every post's summary-derived fields, its IMAP meta,
// its search text and thread placement from the raw bytes, in article order, exactly as intake placed
// them. It returns the number of posts placed.
func Rethread(ctx context.Context, q db.Querier, listID int64, host string) (int, error) {
	var bySubject bool
	if err := q.GetContext(ctx, &bySubject, `SELECT subject_threading FROM lists WHERE id = $1 FOR UPDATE`, listID); err != nil {
		return 0, err
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM ghosts WHERE list_id = $1`, listID); err != nil {
		return 0, err
	}
	if _, err := q.ExecContext(ctx, `UPDATE messages SET thread_id = 0 WHERE list_id = $1`, listID); err != nil {
		return 0, err
	}
	var arts []int64
	if err := q.SelectContext(ctx, &arts, `SELECT article FROM messages WHERE list_id = $1 ORDER BY article`, listID); err != nil {
		return 0, err
	}
	for _, a := range arts {
		raw, err := Raw(ctx, q, listID, a)
		if err != nil {
			return 0, err
		}
		var msgid string
		if err := q.GetContext(ctx, &msgid, `SELECT message_id FROM messages WHERE list_id = $1 AND article = $2`, listID, a); err != nil {
			return 0, err
		}
		s, err := mailmsg.Parse(raw, host, mailmsg.Limits{MaxHeaderBytes: len(raw) + 1, MaxHeaderFields: 1 << 20, MaxMIMEDepth: 1 << 10})
		if err != nil {
			return 0, fmt.Errorf("article %d: %w", a, err)
		}
		refs := s.Refs
		key, lookup := subjectKeys(Post{Summary: s, BySubject: bySubject})
		var tid int64
		if err := q.GetContext(ctx, &tid, `SELECT archive_thread($1, $2, $3, $4, $5)`, listID, a, msgid, textArray(refs), lookup); err != nil {
			return 0, fmt.Errorf("article %d: %w", a, err)
		}
		meta, err := imapmeta.Encode(raw)
		if err != nil {
			return 0, fmt.Errorf("article %d: %w", a, err)
		}
		if _, err := q.ExecContext(ctx, `UPDATE messages SET thread_id = $3, refs = $4, parent_msgid = $5, subject_key = $6, imap = $7,
			search_text = $8 WHERE list_id = $1 AND article = $2`,
			listID, a, tid, textArray(refs), nullIfEmpty(lastOf(refs)), key, meta, mailmsg.SearchText(raw)); err != nil {
			return 0, err
		}
	}
	return len(arts), nil
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// EachRaw calls fn for every post received at or after since, in article
// order, with its envelope sender (the one it came with, else its From:
// address, else ""), streaming rows so that exporting a large archive
// needs memory for one message at a time.
func EachRaw(ctx context.Context, q db.Querier, listID int64, since time.Time, fn func(sender string, received time.Time, raw []byte) error) error {
	return eachRaw(ctx, q, fn, `SELECT `+rawCols+` FROM messages
		WHERE list_id = $1 AND received_at >= $2 ORDER BY article`, listID, since)
}

// rawCols are what eachRaw scans: the envelope sender (else the From:
// address), the arrival time and the bytes.
const rawCols = `coalesce(nullif(envelope_from, ''), from_addr), received_at, raw`

// eachRaw streams the rows of query (selecting rawCols) to fn.
func eachRaw(ctx context.Context, q db.Querier, fn func(sender string, received time.Time, raw []byte) error, query string, args ...any) error {
	rows, err := q.QueryxContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var from string
		var at time.Time
		var raw []byte
		if err := rows.Scan(&from, &at, &raw); err != nil {
			return err
		}
		if err := fn(from, at, raw); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Message is an archived post with what delivery says about it.
type Message struct {
	ListID    int64  `db:"list_id"`
	Article   int64  `db:"article"`
	MessageID string `db:"message_id"`
	From      string `db:"from_addr"`
	Raw       []byte `db:"raw"`
}

// Get returns the archived post with the given id (messages.id, as an
// outbound job names it).
func Get(ctx context.Context, q db.Querier, id int64) (Message, error) {
	var m Message
	err := q.GetContext(ctx, &m, `SELECT list_id, article, message_id, from_addr, raw FROM messages WHERE id = $1`, id)
	if db.IsNoRows(err) {
		return m, errs.Kindf(ErrNoArticle, "no archived message %d", id)
	}
	return m, err
}

// FillSearchText computes the search text of up to batch posts that have
// none (archived before it existed) and returns how many it filled.
func FillSearchText(ctx context.Context, q db.Querier, batch int) (int, error) {
	var rows []struct {
		ID  int64  `db:"id"`
		Raw []byte `db:"raw"`
	}
	if err := q.SelectContext(ctx, &rows, `SELECT id, raw FROM messages WHERE search_text IS NULL ORDER BY id LIMIT $1`, batch); err != nil {
		return 0, err
	}
	ids := make([]int64, len(rows))
	texts := make([]string, len(rows))
	for i, r := range rows {
		ids[i], texts[i] = r.ID, mailmsg.SearchText(r.Raw)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	_, err := q.ExecContext(ctx, `UPDATE messages m SET search_text = u.t
		FROM unnest($1::bigint[], $2::text[]) AS u(id, t) WHERE m.id = u.id`, pq.Int64Array(ids), pq.StringArray(texts))
	return len(rows), err
}

// Distributed returns up to limit of the list's posts from article
// first on that went to its members (imported history did not), in
// article order, without their bytes: what a digest issue may hold.
func Distributed(ctx context.Context, q db.Querier, listID, first int64, limit int) ([]Entry, error) {
	var es []Entry
	err := q.SelectContext(ctx, &es, `
		SELECT `+entryCols+`
		  FROM messages WHERE list_id = $1 AND article >= $2 AND source <> 'import' ORDER BY article LIMIT $3`,
		listID, first, limit)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return es, nil
}

// Pending sums the posts Distributed would return from article first,
// without a limit.
func Pending(ctx context.Context, q db.Querier, listID, first int64) (posts, bytes int64, err error) {
	err = q.QueryRowxContext(ctx, `SELECT count(*), coalesce(sum(size), 0) FROM messages
		WHERE list_id = $1 AND article >= $2 AND source <> 'import'`, listID, first).Scan(&posts, &bytes)
	return posts, bytes, err
}

// Article is an archived post with its bytes.
type Article struct {
	Entry
	Raw []byte `db:"raw"`
}

// Articles returns the distributed posts between articles first and last
// (inclusive), with the bytes of those not in without.
func Articles(ctx context.Context, q db.Querier, listID, first, last int64, without []int64) ([]Article, error) {
	var as []Article
	err := q.SelectContext(ctx, &as, `
		SELECT `+entryCols+`,
		       CASE WHEN article = ANY ($4::bigint[]) THEN ''::bytea ELSE raw END AS raw
		  FROM messages WHERE list_id = $1 AND article BETWEEN $2 AND $3 AND source <> 'import' ORDER BY article`,
		listID, first, last, pq.Int64Array(without))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return as, nil
}
