// Package archive owns the stored posts of every list: inserting a post
// with its article number and thread placement, reading posts back, and
// rebuilding the derived data (threads, the stored IMAP meta) from the raw
// bytes.
//
// Article numbers are forever: each list's counter (lists.next_article) is
// advanced inside the inserting transaction under the list row's lock, so
// numbers are handed out in commit order, and a rolled-back insert leaves
// no gap. Thread ids are derived: a thread's id is the smallest article
// number in it, so placing posts one by one in article order and
// rebuilding all of them from scratch give the same ids.
//
// It owns the messages and ghosts tables and the SQL functions that write
// them (migrations/functions/archive_*.sql), and it is the only writer of
// a list's article counter; the lists package owns the rest of the list
// row. Two packages read messages directly, read-only: imapd (FETCH and
// SEARCH, whose queries are shaped by the IMAP request) and outqueue's
// Expand (the author's address, to leave out the copy of a member who
// asked not to get their own posts, in the statement that writes the
// copies).
package archive

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/imapmeta"
	"github.com/parley-list/parley/internal/mailmsg"
)

// Post is a message to archive.
type Post struct {
	ListID  int64
	Raw     []byte // canonical bytes, as they will be served
	Summary *mailmsg.Summary
	Source  string // smtp, lmtp, approved, import
	// EnvelopeFrom is the envelope sender: MAIL FROM, or an imported mbox
	// message's From_ line ("" for the null sender, or none known).
	EnvelopeFrom string
	ReceivedAt   time.Time
	Queue        bool // also queue delivery to the list's members
	// BySubject lets a "Re:" without references join the latest thread
	// with the same base subject (the list's subject_threading setting).
	BySubject bool
	// Derived is what InsertBatch derives from Raw, when the caller has it
	// already (computed where the work runs in parallel, not in the one
	// writer of a group commit); nil: InsertBatch computes it.
	Derived *Derived
}

// Derived is the data archived beside a post that is computed from its
// bytes: the stored IMAP meta and the search text.
type Derived struct {
	IMAP       []byte
	SearchText string
}

// Derive computes a post's derived data.
func Derive(raw []byte) (*Derived, error) {
	meta, err := imapmeta.Encode(raw)
	if err != nil {
		return nil, fmt.Errorf("archive: imap meta: %w", err)
	}
	return &Derived{IMAP: meta, SearchText: mailmsg.SearchText(raw)}, nil
}

// Stored is what Insert did.
type Stored struct {
	ListID    int64
	ID        int64 // messages.id
	Article   int64
	ThreadID  int64
	Duplicate bool // the same post was already archived; nothing was written
}

// Insert archives a post in the caller's transaction q (or, given the
// pool, as its own transaction). A post that is already in the list's
// archive (same Message-ID and content) is reported as Duplicate and
// nothing is written; two identical posts racing each other are
// serialised by the list lock, and the second finds the first. With
// p.Queue, the post's delivery to the members is queued in the same
// transaction. See migrations/functions/archive_posts.sql for how it is stored.
func Insert(ctx context.Context, q db.Querier, p Post) (Stored, error) {
	sts, err := InsertBatch(ctx, q, []Post{p})
	if err != nil {
		return Stored{}, err
	}
	return sts[0], nil
}

// storedPost is one post as archive_posts and archive_store take it
// (migrations/functions): its keys are the messages columns, plus
// subject_lookup and queue, which are not.
type storedPost struct {
	ListID     int64      `json:"list_id"`
	MessageID  string     `json:"message_id"`
	Synth      bool       `json:"msgid_synth"`
	HeaderLen  int        `json:"header_len"`
	Lines      int        `json:"lines"`
	Received   time.Time  `json:"received_at"`
	Sent       *time.Time `json:"sent_at"`
	From       string     `json:"from_addr"`
	FromName   string     `json:"from_name"`
	Subject    string     `json:"subject"`
	SubjectKey string     `json:"subject_key"`
	InReplyTo  *string    `json:"in_reply_to"`
	Refs       []string   `json:"refs"`
	Parent     *string    `json:"parent_msgid"`
	Source     string     `json:"source"`
	IMAP       byteaText  `json:"imap"`
	SearchText string     `json:"search_text"`
	Envelope   string     `json:"envelope_from"`
	Lookup     string     `json:"subject_lookup"` // not a column: the base subject to thread by
	Queue      bool       `json:"queue"`          // not a column: queue delivery to the members
}

// BodyLines is the number of lines of a message body: those that end in
// LF, and a last one without.
func BodyLines(body []byte) int {
	n := bytes.Count(body, []byte("\n"))
	if len(body) > 0 && body[len(body)-1] != '\n' {
		n++
	}
	return n
}

// byteaText is bytes in a JSON string as PostgreSQL's bytea input reads
// them ("\\x" and hex), for jsonb_populate_record; nil is null.
type byteaText []byte

func (b byteaText) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	out := make([]byte, 0, 5+2*len(b))
	out = append(out, `"\\x`...)
	out = hex.AppendEncode(out, b)
	return append(out, '"'), nil
}

// InsertBatch archives posts in order, exactly as Insert would one by one,
// in one call to the database (archive_posts), within q's transaction.
func InsertBatch(ctx context.Context, q db.Querier, posts []Post) ([]Stored, error) {
	recs := make([]storedPost, len(posts))
	raws := make(pq.ByteaArray, len(posts))
	keys := make(pq.ByteaArray, len(posts))
	for i, p := range posts {
		s := p.Summary
		key, lookup := subjectKeys(p)
		recs[i] = storedPost{ListID: p.ListID, MessageID: s.MessageID, Synth: s.Synthesised, HeaderLen: s.HeaderLen,
			Received: p.ReceivedAt, Sent: s.Date, From: s.From, FromName: s.FromName, Subject: s.Subject,
			SubjectKey: key, InReplyTo: strPtr(s.InReplyTo), Refs: nonNilStrings(s.Refs), Parent: strPtr(s.Parent()),
			Source: p.Source, Lookup: lookup, Queue: p.Queue, Envelope: p.EnvelopeFrom}
		raws[i], keys[i] = p.Raw, s.ContentKey
		recs[i].Lines = BodyLines(p.Raw[min(s.HeaderLen, len(p.Raw)):])
		d := p.Derived
		if d == nil {
			var err error
			if d, err = Derive(p.Raw); err != nil {
				return nil, err
			}
		}
		recs[i].IMAP, recs[i].SearchText = d.IMAP, d.SearchText
	}
	js, err := json.Marshal(recs)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryxContext(ctx, `SELECT id, article, thread_id, duplicate FROM archive_posts($1, $2, $3)`, string(js), raws, keys)
	if err != nil {
		return nil, fmt.Errorf("archive: insert batch: %w", err)
	}
	defer rows.Close()
	out := make([]Stored, 0, len(posts))
	for rows.Next() {
		st := Stored{ListID: posts[len(out)].ListID}
		if err := rows.Scan(&st.ID, &st.Article, &st.ThreadID, &st.Duplicate); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: insert batch: %w", err)
	}
	if len(out) != len(posts) {
		return nil, fmt.Errorf("archive: insert batch: %d results for %d posts", len(out), len(posts))
	}
	return out, nil
}

// subjectKeys returns the post's base subject, and the key to look up a
// thread by subject when the list allows that and the post is a reply
// without references ("" otherwise).
func subjectKeys(p Post) (key, lookup string) {
	key, reply := mailmsg.BaseSubject(p.Summary.Subject)
	if p.BySubject && reply && len(p.Summary.Refs) == 0 && key != "" {
		lookup = key
	}
	return key, lookup
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
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
