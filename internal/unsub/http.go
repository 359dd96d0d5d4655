package unsub

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/lists"
)

// Handler serves /unsubscribe/{token}: GET shows a confirmation page with
// a button, POST (the RFC 8058 one-click request, or the button) removes
// the member.
type Handler struct {
	DB     *sqlx.DB
	Signer *Signer
	Log    *slog.Logger
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
		w.WriteHeader(http.StatusNotFound)
		page.Execute(w, view{Title: "Link not valid", Text: "This unsubscribe link is not valid. Use the link in a recent message from the list."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	l, err := lists.GetByID(ctx, h.DB, listID)
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		page.Execute(w, view{Title: "List not found", Text: "This list no longer exists."})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		page.Execute(w, view{Title: "Unsubscribe", Address: addr, List: l.Address, Button: true,
			Text: fmt.Sprintf("Press the button to stop receiving mail from %s at %s.", l.Address, addr)})
	case http.MethodPost:
		res, err := h.DB.ExecContext(ctx, `DELETE FROM members WHERE list_id = $1 AND address_norm = $2`, listID, addr)
		if err != nil {
			h.Log.Error("one-click unsubscribe failed", "event", "unsubscribe_failed", "list", l.Address, "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			page.Execute(w, view{Title: "Please try again", Text: "Something went wrong on our side; nothing changed."})
			return
		}
		if n, _ := res.RowsAffected(); n > 0 {
			h.Log.Info("member unsubscribed by one-click link", "event", "unsubscribed", "list", l.Address, "rcpt", addr)
		}
		page.Execute(w, view{Title: "Unsubscribed", Text: fmt.Sprintf("%s will receive no more mail from %s.", addr, l.Address)})
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
