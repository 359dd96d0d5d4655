package unsub

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/members"
)

// Handler serves /unsubscribe/{token}: GET shows a confirmation page with
// a button, POST (the RFC 8058 one-click request, or the button) removes
// the member.
type Handler struct {
	DB     *sqlx.DB
	Signer *Signer
	Log    *slog.Logger
	// Greeter tells the member (the list's goodbye) and the owners (when
	// the list asks), in the unsubscription's transaction.
	Greeter Greeter
}

// Greeter queues the mails a removal brings (commands.Greeter).
type Greeter interface {
	Removed(ctx context.Context, q db.Querier, l lists.List, address, how string, self bool) error
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{{.Title}}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Button}}<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe {{.Address}} from {{.List}}</button></form>{{end}}
</body></html>`))

type view struct {
	Title, Text, Address, List string
	Button                     bool
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Robots-Tag", "noindex")
	listID, addr, err := h.Signer.Check(r.PathValue("token"))
	if err != nil {
		h.refused("bad link")
		w.WriteHeader(http.StatusNotFound)
		page.Execute(w, view{Title: "Link not valid", Text: "This unsubscribe link is not valid. Use the link in a recent message from the list."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	l, ok := h.list(ctx, w, listID, addr)
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		page.Execute(w, view{Title: "Unsubscribe", Address: addr, List: l.Address, Button: true,
			Text: fmt.Sprintf("Press the button to stop receiving mail from %s at %s.", l.Address, addr)})
	case http.MethodPost:
		h.unsubscribe(ctx, w, l, addr)
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// list returns the list a link names, or answers that it is gone.
func (h *Handler) list(ctx context.Context, w http.ResponseWriter, listID int64, addr string) (lists.List, bool) {
	l, err := lists.GetByID(ctx, h.DB, listID)
	switch {
	case errors.Is(err, lists.ErrNotFound):
		h.refused("list gone", "rcpt", addr)
		w.WriteHeader(http.StatusNotFound)
		page.Execute(w, view{Title: "List not found", Text: "This list no longer exists."})
		return l, false
	case err != nil:
		h.Log.Error("unsubscribe link: list lookup failed", "event", "unsubscribe_failed", "err", err)
		sorry(w)
		return l, false
	}
	return l, true
}

func (h *Handler) unsubscribe(ctx context.Context, w http.ResponseWriter, l lists.List, addr string) {
	err := db.InTx(ctx, h.DB, func(tx *sqlx.Tx) error {
		if err := members.Remove(ctx, tx, l.ID, addr); err != nil {
			return err
		}
		return h.Greeter.Removed(ctx, tx, l, addr, "by the unsubscribe link in a list message", true)
	})
	switch {
	case errors.Is(err, members.ErrNotFound):
		// Already gone (a second click, say): the page says the same.
		h.refused("not a member", "list", l.Address, "rcpt", addr)
	case err != nil:
		h.Log.Error("one-click unsubscribe failed", "event", "unsubscribe_failed", "list", l.Address, "err", err)
		sorry(w)
		return
	default:
		h.Log.Info("member unsubscribed by one-click link", "event", "unsubscribed", "list", l.Address, "rcpt", addr, "via", "http")
	}
	page.Execute(w, view{Title: "Unsubscribed", Text: fmt.Sprintf("%s will receive no more mail from %s.", addr, l.Address)})
}

func sorry(w http.ResponseWriter) {
	w.WriteHeader(http.StatusServiceUnavailable)
	page.Execute(w, view{Title: "Please try again", Text: "Something went wrong on our side; nothing changed."})
}

// refused logs a request that unsubscribed nobody; never the token, which
// would unsubscribe whoever it names.
func (h *Handler) refused(reason string, args ...any) {
	h.Log.Info("unsubscribe link refused", append([]any{"event", "unsubscribe_refused", "reason", reason}, args...)...)
}
