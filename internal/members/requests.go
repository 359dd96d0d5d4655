package members

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/mailaddr"
)

// Subscriptions that wait for an owner (lists.subscribe_policy
// "approve") are requests: the person confirmed their address, and an
// owner approves or refuses, by mail or with the CLI.

// ErrDecided says a request was decided already; the error's text says
// by whom and when.
var ErrDecided = errors.New("already decided")

// Request states.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestRefused  = "refused"
)

// Request is a subscription waiting for an owner, or the record of one
// decided.
type Request struct {
	ID          int64      `db:"id" json:"id"`
	ListID      int64      `db:"list_id" json:"-"`
	Address     string     `db:"address" json:"address"`
	AddressNorm string     `db:"address_norm" json:"-"`
	Delivery    Delivery   `db:"delivery" json:"delivery"`
	State       string     `db:"state" json:"state"`
	RequestedAt time.Time  `db:"requested_at" json:"requested_at"`
	DecidedAt   *time.Time `db:"decided_at" json:"decided_at,omitempty"`
	DecidedBy   string     `db:"decided_by" json:"decided_by,omitempty"`
	Reason      string     `db:"reason" json:"reason,omitempty"`
}

const requestCols = `id, list_id, address, address_norm, delivery, state, requested_at, decided_at, decided_by, reason`

// AddRequest records a confirmed subscription that waits for an owner and
// returns it; asking again while one is pending returns the pending one
// (fresh reports whether it is new).
func AddRequest(ctx context.Context, q db.Querier, listID int64, addr mailaddr.Address, given string, d Delivery) (r Request, fresh bool, err error) {
	err = q.GetContext(ctx, &r, `
		INSERT INTO sub_requests (list_id, address, address_norm, delivery) VALUES ($1, $2, $3, $4)
		ON CONFLICT (list_id, address_norm) WHERE state = 'pending' DO NOTHING
		RETURNING `+requestCols, listID, given, addr.String(), string(orDefault(d, DeliveryRegular)))
	if err == nil {
		return r, true, nil
	}
	if !db.IsNoRows(err) {
		return r, false, fmt.Errorf("subscription request: %w", err)
	}
	err = q.GetContext(ctx, &r, `SELECT `+requestCols+` FROM sub_requests
		WHERE list_id = $1 AND address_norm = $2 AND state = 'pending'`, listID, addr.String())
	return r, false, err
}

// Requests returns a list's pending requests (listID 0: every list's),
// oldest first.
func Requests(ctx context.Context, q db.Querier, listID int64) ([]Request, error) {
	var rs []Request
	err := q.SelectContext(ctx, &rs, `SELECT `+requestCols+` FROM sub_requests
		WHERE state = 'pending' AND ($1 = 0 OR list_id = $1) ORDER BY id`, listID)
	return rs, err
}

// FindRequest returns a list's request by its number, or by the address
// of its pending request.
func FindRequest(ctx context.Context, q db.Querier, listID int64, idOrAddress string) (Request, error) {
	var r Request
	var err error
	if a, perr := mailaddr.Parse(idOrAddress); perr == nil {
		err = q.GetContext(ctx, &r, `SELECT `+requestCols+` FROM sub_requests
			WHERE list_id = $1 AND address_norm = $2 ORDER BY state = 'pending' DESC, id DESC LIMIT 1`, listID, a.String())
	} else {
		var id int64
		if _, serr := fmt.Sscan(idOrAddress, &id); serr != nil {
			return r, errs.Invalidf("%q is neither a request number nor an address", idOrAddress)
		}
		err = q.GetContext(ctx, &r, `SELECT `+requestCols+` FROM sub_requests WHERE list_id = $1 AND id = $2`, listID, id)
	}
	if db.IsNoRows(err) {
		return r, errs.Kindf(ErrNotFound, "no subscription request %s", idOrAddress)
	}
	return r, err
}

// DecideRequest approves (adding the member) or refuses request id in
// the caller's transaction, which it locks. A request decided already is
// an ErrDecided saying by whom and when.
func DecideRequest(ctx context.Context, q db.Querier, listID, id int64, approve bool, by, reason string) (Request, error) {
	var r Request
	err := q.GetContext(ctx, &r, `SELECT `+requestCols+` FROM sub_requests WHERE list_id = $1 AND id = $2 FOR UPDATE`, listID, id)
	if db.IsNoRows(err) {
		return r, errs.Kindf(ErrNotFound, "no subscription request %d", id)
	}
	if err != nil {
		return r, err
	}
	if r.State != RequestPending {
		return r, errs.Kindf(ErrDecided, "the request of %s was already %s by %s on %s", r.Address, r.State, Decider(r.DecidedBy),
			r.DecidedAt.UTC().Format("2 Jan 2006 15:04 MST"))
	}
	state := RequestRefused
	if approve {
		state = RequestApproved
		a, err := mailaddr.Parse(r.AddressNorm)
		if err != nil {
			return r, err
		}
		if _, err := Add(ctx, q, listID, []New{{Given: r.Address, Address: a, Role: RoleMember, Delivery: r.Delivery}}); err != nil {
			return r, err
		}
	}
	err = q.GetContext(ctx, &r, `UPDATE sub_requests SET state = $2, decided_at = now(), decided_by = $3, reason = $4
		WHERE id = $1 RETURNING `+requestCols, id, state, by, reason)
	return r, err
}

// Decider says who made a decision recorded as by ("reply:ADDR",
// "password:ADDR", "confirmed:ADDR", "cli:USER") as a person reads it.
func Decider(by string) string {
	how, who, ok := strings.Cut(by, ":")
	switch {
	case !ok:
		return by
	case how == "cli":
		return who + " on the server"
	}
	return who + " by mail"
}
