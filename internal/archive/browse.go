package archive

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/mailmsg"
)

// The reads of a browsable archive (internal/web): threads newest first,
// one thread, one post by Message-ID, a month. Each is one indexed query,
// bounded.

const entryCols = `id, article, message_id, thread_id, refs, subject, from_addr, from_name, sent_at, received_at, size, lines`

// MaxThreadPosts bounds the posts of one thread a page or feed shows.
const MaxThreadPosts = 2000

// ThreadSummary is one thread as a list of threads shows it.
type ThreadSummary struct {
	ThreadID     int64     `db:"thread_id"`
	Subject      string    `db:"subject"` // the first post's
	Starter      string    `db:"starter"` // the first post's author (name, else address)
	Posts        int       `db:"posts"`   // in all, the first included
	Participants int       `db:"participants"`
	LastArticle  int64     `db:"last_article"`
	LastActivity time.Time `db:"last_activity"`
	FirstMsgID   string    `db:"first_msgid"`
}

// Threads returns up to limit of a list's threads by latest activity,
// newest first, those whose latest post is before article before (0: from
// the newest).
func Threads(ctx context.Context, q db.Querier, listID, before int64, limit int) ([]ThreadSummary, error) {
	var ts []ThreadSummary
	err := q.SelectContext(ctx, &ts, `
		WITH latest AS (
		    SELECT thread_id, max(article) AS last_article
		      FROM messages WHERE list_id = $1
		     GROUP BY thread_id
		    HAVING $2 = 0 OR max(article) < $2
		     ORDER BY max(article) DESC LIMIT $3)
		SELECT l.thread_id, l.last_article, f.subject, coalesce(nullif(f.from_name, ''), f.from_addr) AS starter,
		       f.message_id AS first_msgid, s.posts, s.participants, s.last_activity
		  FROM latest l
		  CROSS JOIN LATERAL (SELECT subject, from_name, from_addr, message_id FROM messages
		                       WHERE list_id = $1 AND thread_id = l.thread_id ORDER BY article LIMIT 1) f
		  CROSS JOIN LATERAL (SELECT count(*) AS posts, count(DISTINCT lower(from_addr)) AS participants,
		                             max(received_at) AS last_activity
		                        FROM messages WHERE list_id = $1 AND thread_id = l.thread_id) s
		 ORDER BY l.last_article DESC`, listID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("archive: threads: %w", err)
	}
	return ts, nil
}

// Thread returns a thread's posts in article order (at most
// MaxThreadPosts), without their bytes.
func Thread(ctx context.Context, q db.Querier, listID, threadID int64) ([]Entry, error) {
	var es []Entry
	err := q.SelectContext(ctx, &es, `SELECT `+entryCols+` FROM messages
		WHERE list_id = $1 AND thread_id = $2 ORDER BY article LIMIT $3`, listID, threadID, MaxThreadPosts)
	if err != nil {
		return nil, fmt.Errorf("archive: thread: %w", err)
	}
	if len(es) == 0 {
		return nil, errs.Kindf(ErrNoArticle, "no thread %d", threadID)
	}
	return es, nil
}

// ByMessageID returns the post with that Message-ID (without <>); when
// two posts share one, the first.
func ByMessageID(ctx context.Context, q db.Querier, listID int64, msgid string) (Article, error) {
	_, a, err := ByMessageIDIn(ctx, q, []int64{listID}, msgid)
	return a, err
}

// ByMessageIDIn finds a post by Message-ID in any of the lists given, in
// one query (a news reader's ARTICLE <id> names no group), and returns
// its list with it: the lowest list, then the first article.
func ByMessageIDIn(ctx context.Context, q db.Querier, listIDs []int64, msgid string) (int64, Article, error) {
	var a struct {
		ListID int64 `db:"list_id"`
		Article
	}
	err := q.GetContext(ctx, &a, `SELECT list_id, `+entryCols+`, raw FROM messages
		WHERE list_id = ANY($1) AND message_id = $2 ORDER BY list_id, article LIMIT 1`, pq.Int64Array(listIDs), msgid)
	if db.IsNoRows(err) {
		return 0, a.Article, errs.Kindf(ErrNoArticle, "no post <%s>", msgid)
	}
	return a.ListID, a.Article, err
}

// Between returns up to limit posts received in [from, to), in article
// order, without their bytes.
func Between(ctx context.Context, q db.Querier, listID int64, from, to time.Time, limit int) ([]Entry, error) {
	var es []Entry
	err := q.SelectContext(ctx, &es, `SELECT `+entryCols+` FROM messages
		WHERE list_id = $1 AND received_at >= $2 AND received_at < $3 ORDER BY article LIMIT $4`, listID, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("archive: month: %w", err)
	}
	return es, nil
}

// Newest returns a list's newest posts, newest first, without their
// bytes.
func Newest(ctx context.Context, q db.Querier, listID int64, limit int) ([]Entry, error) {
	var es []Entry
	err := q.SelectContext(ctx, &es, `SELECT `+entryCols+` FROM messages
		WHERE list_id = $1 ORDER BY article DESC LIMIT $2`, listID, limit)
	if err != nil {
		return nil, fmt.Errorf("archive: newest: %w", err)
	}
	return es, nil
}

// Adjacent returns the Message-IDs of the posts before and after article
// in the archive's order ("" where there is none).
func Adjacent(ctx context.Context, q db.Querier, listID, article int64) (prev, next string, err error) {
	err = q.QueryRowxContext(ctx, `SELECT
		coalesce((SELECT message_id FROM messages WHERE list_id = $1 AND article < $2 ORDER BY article DESC LIMIT 1), ''),
		coalesce((SELECT message_id FROM messages WHERE list_id = $1 AND article > $2 ORDER BY article LIMIT 1), '')`,
		listID, article).Scan(&prev, &next)
	return prev, next, err
}

// Raws returns the bytes of the given articles, in article order, with
// each one's envelope sender and arrival time, for an mbox.
func Raws(ctx context.Context, q db.Querier, listID int64, articles []int64, fn func(sender string, received time.Time, raw []byte) error) error {
	return eachRaw(ctx, q, fn, `SELECT `+rawCols+` FROM messages
		WHERE list_id = $1 AND article = ANY($2) ORDER BY article`, listID, pq.Int64Array(articles))
}

// LastPost returns when the list's newest post arrived (zero: none).
func LastPost(ctx context.Context, q db.Querier, listID int64) (time.Time, error) {
	var t *time.Time
	err := q.GetContext(ctx, &t, `SELECT received_at FROM messages WHERE list_id = $1 ORDER BY article DESC LIMIT 1`, listID)
	if db.IsNoRows(err) || t == nil {
		return time.Time{}, nil
	}
	return *t, err
}

// RawOf returns the bytes of the given articles, by article.
func RawOf(ctx context.Context, q db.Querier, listID int64, articles []int64) (map[int64][]byte, error) {
	var rows []struct {
		Article int64  `db:"article"`
		Raw     []byte `db:"raw"`
	}
	err := q.SelectContext(ctx, &rows, `SELECT article, raw FROM messages WHERE list_id = $1 AND article = ANY($2)`,
		listID, pq.Int64Array(articles))
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.Article] = r.Raw
	}
	return out, err
}

// Query is a search of a list's archive: every criterion given must
// hold. Text is matched as IMAP SEARCH BODY matches it: anywhere in the
// text a reader sees (search_text, folded as mailmsg.FoldSearch folds).
type Query struct {
	Text, From, Subject string
	After, Before       time.Time // received at or after, before; zero: no bound
}

// likeEscaper escapes LIKE's special characters (backslash is the escape).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Search returns up to limit posts matching s, newest first, without
// their bytes. Each criterion is one indexed condition (trigram indexes
// on search_text, the author and the subject).
func Search(ctx context.Context, q db.Querier, listID int64, s Query, limit int) ([]Entry, error) {
	where := []string{"list_id = $1"}
	args := []any{listID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if s.Text != "" {
		add("search_text LIKE ?", "%"+likeEscaper.Replace(mailmsg.FoldSearch(s.Text))+"%")
	}
	if s.From != "" {
		add("(from_name || ' <' || from_addr || '>') ILIKE ?", "%"+likeEscaper.Replace(s.From)+"%")
	}
	if s.Subject != "" {
		add("subject ILIKE ?", "%"+likeEscaper.Replace(s.Subject)+"%")
	}
	if !s.After.IsZero() {
		add("received_at >= ?", s.After)
	}
	if !s.Before.IsZero() {
		add("received_at < ?", s.Before)
	}
	args = append(args, limit)
	var es []Entry
	// The matches are found first (MATERIALIZED keeps the trigram indexes
	// in charge) and ordered after: left to itself, the planner walks
	// the list backwards by article and tests each post, which for a
	// rare word reads the whole list.
	err := q.SelectContext(ctx, &es, `WITH m AS MATERIALIZED (SELECT `+entryCols+` FROM messages WHERE `+strings.Join(where, " AND ")+
		`) SELECT * FROM m`+fmt.Sprintf(` ORDER BY article DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("archive: search: %w", err)
	}
	return es, nil
}

// EachEntry streams the posts with articles in [low, high], in article
// order, without their bytes: an overview of 100,000 posts reads no
// message.
func EachEntry(ctx context.Context, q db.Querier, listID, low, high int64, fn func(Entry) error) error {
	rows, err := q.QueryxContext(ctx, `SELECT `+entryCols+` FROM messages
		WHERE list_id = $1 AND article BETWEEN $2 AND $3 ORDER BY article`, listID, low, high)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		if err := rows.StructScan(&e); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ArticleNear returns the article after (next) or before (!next) a given
// one, 0 when there is none.
func ArticleNear(ctx context.Context, q db.Querier, listID, article int64, next bool) (int64, error) {
	query := `SELECT coalesce((SELECT article FROM messages WHERE list_id = $1 AND article > $2 ORDER BY article LIMIT 1), 0)`
	if !next {
		query = `SELECT coalesce((SELECT article FROM messages WHERE list_id = $1 AND article < $2 ORDER BY article DESC LIMIT 1), 0)`
	}
	var a int64
	err := q.GetContext(ctx, &a, query, listID, article)
	return a, err
}

// ArticleByNumber returns one post with its bytes.
func ArticleByNumber(ctx context.Context, q db.Querier, listID, article int64) (Article, error) {
	var a Article
	err := q.GetContext(ctx, &a, `SELECT `+entryCols+`, raw FROM messages WHERE list_id = $1 AND article = $2`, listID, article)
	if db.IsNoRows(err) {
		return a, errs.Kindf(ErrNoArticle, "no article %d", article)
	}
	return a, err
}

// ArticlesFrom returns up to limit posts from article first on, in
// article order, holding at most maxBytes in all (the first always
// comes), with the bytes of those no larger than maxRaw (the others' Raw
// is nil: fetch them alone). A news reader that pipelines ARTICLE
// commands then costs one query per window, not per article.
func ArticlesFrom(ctx context.Context, q db.Querier, listID, first int64, limit, maxRaw, maxBytes int) ([]Article, error) {
	var as []Article
	err := q.SelectContext(ctx, &as, `SELECT `+entryCols+`, raw FROM (
		SELECT `+entryCols+`, CASE WHEN size <= $4 THEN raw END AS raw,
		       sum(CASE WHEN size <= $4 THEN size ELSE 0 END) OVER (ORDER BY article) AS upto
		  FROM messages WHERE list_id = $1 AND article >= $2 ORDER BY article LIMIT $3) w
		WHERE article = $2 OR upto <= $5 ORDER BY article`, listID, first, limit, maxRaw, maxBytes)
	return as, err
}
