// Package archive owns the stored posts of every list: inserting a post
// with its article number and thread placement, reading posts back, and
// rebuilding the derived data (threads) from the raw bytes.
//
// Article numbers are forever: each list's counter is advanced with
// UPDATE … RETURNING inside the inserting transaction, so the list row lock
// orders inserts, numbers are handed out in commit order, and a rolled-back
// insert leaves no gap. Thread ids are derived: a thread's id is the
// smallest article number in it, so placing posts one by one in article
// order and rebuilding all of them from scratch give the same ids.
package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/mailmsg"
)

// Post is a message to archive.
type Post struct {
	ListID     int64
	Raw        []byte // canonical bytes, as they will be served
	Summary    *mailmsg.Summary
	Source     string // smtp, lmtp, approved, import
	ReceivedAt time.Time
}

// Stored is what Insert did.
type Stored struct {
	ID        int64 // messages.id
	Article   int64
	ThreadID  int64
	Duplicate bool // the same post was already archived; nothing was written
}

// Insert archives a post in the caller's transaction q. A post that is
// already in the list's archive (same Message-ID and content) is reported
// as Duplicate and nothing is written. Two identical posts racing each
// other may both miss the check; the loser fails on the unique index and
// its transaction is retried by the sender, which then finds the duplicate.
func Insert(ctx context.Context, q db.Querier, p Post) (Stored, error) {
	s := p.Summary
	var existing Stored
	err := q.QueryRowxContext(ctx, `
		SELECT id, article, thread_id FROM messages
		 WHERE list_id = $1 AND message_id = $2 AND content_key = $3`,
		p.ListID, s.MessageID, s.ContentKey).Scan(&existing.ID, &existing.Article, &existing.ThreadID)
	if err == nil {
		existing.Duplicate = true
		return existing, nil
	}
	if !db.IsNoRows(err) {
		return Stored{}, fmt.Errorf("archive: %w", err)
	}
	var article int64
	if err := q.QueryRowxContext(ctx,
		`UPDATE lists SET next_article = next_article + 1 WHERE id = $1 RETURNING next_article - 1`,
		p.ListID).Scan(&article); err != nil {
		return Stored{}, fmt.Errorf("archive: article number: %w", err)
	}
	tid, err := placeInThread(ctx, q, p.ListID, article, s.MessageID, s.Refs)
	if err != nil {
		return Stored{}, err
	}
	mime, err := json.Marshal(s.MIME)
	if err != nil {
		return Stored{}, err
	}
	var id int64
	err = q.QueryRowxContext(ctx, `
		INSERT INTO messages (list_id, article, message_id, msgid_synth, content_key, raw, size, header_len,
		                      received_at, sent_at, from_addr, from_name, subject, in_reply_to, refs,
		                      parent_msgid, thread_id, mime, source)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		RETURNING id`,
		p.ListID, article, s.MessageID, s.Synthesised, s.ContentKey, p.Raw, len(p.Raw), s.HeaderLen,
		p.ReceivedAt, s.Date, s.From, s.FromName, s.Subject, nullIfEmpty(s.InReplyTo), textArray(s.Refs),
		nullIfEmpty(s.Parent()), tid, mime, p.Source).Scan(&id)
	if err != nil {
		return Stored{}, fmt.Errorf("archive: insert: %w", err)
	}
	// Readers (IMAP sessions in any parley process) learn of the new
	// article on commit.
	if _, err := q.ExecContext(ctx, `SELECT pg_notify('archive', $1)`,
		strconv.FormatInt(p.ListID, 10)+":"+strconv.FormatInt(article, 10)); err != nil {
		return Stored{}, fmt.Errorf("archive: notify: %w", err)
	}
	return Stored{ID: id, Article: article, ThreadID: tid}, nil
}

// placeInThread finds the thread a new post belongs to and merges threads
// the post connects. A post joins every thread that contains one of its
// ancestors (as a post or a ghost) or a ghost of itself (replies that came
// first). The surviving id is the smallest; the others are renumbered.
// Then the post's unseen ancestors become ghosts of the thread. No step
// follows a chain of references, so loops cost nothing.
//
// Only posts with a smaller article count as present. When posts are
// placed as they arrive that is all of them; when Rethread places them
// again in article order it hides the later ones, so both ways give the
// same threads.
func placeInThread(ctx context.Context, q db.Querier, listID, article int64, msgid string, refs []string) (int64, error) {
	ids := append(append([]string(nil), refs...), msgid)
	var found []int64
	err := q.SelectContext(ctx, &found, `
		SELECT thread_id FROM messages WHERE list_id = $1 AND message_id = ANY($2) AND article < $3
		UNION
		SELECT thread_id FROM ghosts WHERE list_id = $1 AND message_id = ANY($2)`,
		listID, pq.StringArray(ids), article)
	if err != nil {
		return 0, fmt.Errorf("archive: thread lookup: %w", err)
	}
	tid := article
	for _, t := range found {
		tid = min(tid, t)
	}
	var merge []int64
	for _, t := range found {
		if t != tid {
			merge = append(merge, t)
		}
	}
	if len(merge) > 0 {
		for _, table := range []string{"messages", "ghosts"} {
			if _, err := q.ExecContext(ctx, `UPDATE `+table+` SET thread_id = $2 WHERE list_id = $1 AND thread_id = ANY($3)`,
				listID, tid, pq.Int64Array(merge)); err != nil {
				return 0, fmt.Errorf("archive: thread merge: %w", err)
			}
		}
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM ghosts WHERE list_id = $1 AND message_id = $2`, listID, msgid); err != nil {
		return 0, fmt.Errorf("archive: ghosts: %w", err)
	}
	if len(refs) > 0 {
		_, err = q.ExecContext(ctx, `
			INSERT INTO ghosts (list_id, message_id, thread_id)
			SELECT $1, r, $2 FROM unnest($3::text[]) AS r
			 WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.list_id = $1 AND m.message_id = r AND m.article < $4)
			ON CONFLICT (list_id, message_id) DO UPDATE SET thread_id = EXCLUDED.thread_id`,
			listID, tid, pq.StringArray(refs), article)
		if err != nil {
			return 0, fmt.Errorf("archive: ghosts: %w", err)
		}
	}
	return tid, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// textArray passes a Go slice as a text[] that is never NULL.
func textArray(s []string) pq.StringArray {
	if s == nil {
		return pq.StringArray{}
	}
	return pq.StringArray(s)
}
