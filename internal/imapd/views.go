package imapd

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// A list's mailbox has one child per year that has posts, named
// "list@domain/2025": a view of the same messages (same UIDs, same
// UIDVALIDITY) archived in that year (UTC), for clients that struggle
// with one huge folder. Inside a year view sequence numbers differ from
// UIDs, so the selected state keeps the view's UIDs in order.

// splitYear splits "list/2025" into the list name and the year; a name
// without a year suffix comes back with year 0.
func splitYear(name string) (string, int) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 || len(name)-i-1 != 4 {
		return name, 0
	}
	y, err := strconv.Atoi(name[i+1:])
	if err != nil || y < 1000 {
		return name, 0
	}
	return name[:i], y
}

// yearCond restricts a query on messages to the archive times of year
// (nothing for 0, the whole list). year is a number, never client text.
func yearCond(year int) string {
	if year == 0 {
		return ""
	}
	return fmt.Sprintf(" AND received_at >= make_timestamptz(%d, 1, 1, 0, 0, 0, 'UTC')"+
		" AND received_at < make_timestamptz(%d, 1, 1, 0, 0, 0, 'UTC')", year, year+1)
}

// years returns, for each of the lists, the years that have posts, in
// order. It costs one index probe per year (a loose scan of
// messages_by_date), not a read of the list.
func (s *session) years(ctx context.Context, lists []int64) (map[int64][]int, error) {
	var rows []struct {
		List int64 `db:"list_id"`
		Year int   `db:"year"`
	}
	err := s.srv.o.DB.SelectContext(ctx, &rows, `
		WITH RECURSIVE y (list_id, t) AS (
			SELECT l, (SELECT min(received_at) FROM messages WHERE list_id = l)
			  FROM unnest($1::bigint[]) AS l
			UNION ALL
			SELECT y.list_id, (SELECT min(received_at) FROM messages
			                    WHERE list_id = y.list_id
			                      AND received_at >= (date_trunc('year', y.t AT TIME ZONE 'UTC') + interval '1 year') AT TIME ZONE 'UTC')
			  FROM y WHERE y.t IS NOT NULL)
		SELECT list_id, extract(year FROM t AT TIME ZONE 'UTC')::int AS year FROM y WHERE t IS NOT NULL`,
		pq.Int64Array(lists))
	if err != nil {
		return nil, err
	}
	out := map[int64][]int{}
	for _, r := range rows {
		out[r.List] = append(out[r.List], r.Year)
	}
	for _, ys := range out {
		sort.Ints(ys)
	}
	return out, nil
}

// count is the number of messages in the selected mailbox the client
// knows about.
func (sel *selected) count() uint32 {
	if sel.year == 0 {
		return sel.known
	}
	return uint32(len(sel.uids))
}

// maxUID is the largest UID the client knows about (0: none).
func (sel *selected) maxUID() uint32 {
	if sel.year == 0 {
		return sel.known
	}
	if len(sel.uids) == 0 {
		return 0
	}
	return sel.uids[len(sel.uids)-1]
}

// seqOf returns the sequence number of uid, 0 if it is not in the view.
func (sel *selected) seqOf(uid uint32) uint32 {
	if sel.year == 0 {
		if uid > sel.known {
			return 0
		}
		return uid
	}
	i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= uid })
	if i == len(sel.uids) || sel.uids[i] != uid {
		return 0
	}
	return uint32(i + 1)
}

// uidOf returns the UID of sequence number seq (1..count()).
func (sel *selected) uidOf(seq uint32) uint32 {
	if sel.year == 0 {
		return seq
	}
	return sel.uids[seq-1]
}

// each calls fn for every message of the view inside the UID spans, in
// order, until fn returns an error.
func (sel *selected) each(sp []span, fn func(uid, seq uint32) error) error {
	for _, r := range sp {
		if sel.year == 0 {
			for uid := r.lo; uid <= r.hi && uid != 0; uid++ {
				if err := fn(uid, uid); err != nil {
					return err
				}
				if uid == r.hi {
					break // uid+1 could wrap at the top of uint32
				}
			}
			continue
		}
		i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= r.lo })
		for ; i < len(sel.uids) && sel.uids[i] <= r.hi; i++ {
			if err := fn(sel.uids[i], uint32(i+1)); err != nil {
				return err
			}
		}
	}
	return nil
}
