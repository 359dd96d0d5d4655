package commands

import (
	"context"
	"embed"
	"sort"
	"strings"
	"text/template"

	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
)

// The reply texts: plain text templates, embedded; a list may override
// any of them (parley list template set).
//
//go:embed templates/*.txt
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.txt"))

// TemplateNames lists the templates a list can override.
func TemplateNames() []string {
	var names []string
	for _, t := range templates.Templates() {
		names = append(names, strings.TrimSuffix(t.Name(), ".txt"))
	}
	sort.Strings(names)
	return names
}

// listView is what the templates see.
type listView struct {
	Address, Name, Description, Policy, Archive string
	Request, Join, Leave, Owner                 string
}

func view(l lists.List) listView {
	return listView{Address: l.Address, Name: l.DisplayName, Description: l.Description,
		Policy: string(l.PostPolicy), Archive: string(l.Archive),
		Request: mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, ""), Join: mailaddr.ServiceAddr(l.Address, mailaddr.KindJoin, ""),
		Leave: mailaddr.ServiceAddr(l.Address, mailaddr.KindLeave, ""), Owner: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "")}
}

// SetTemplate stores a list's override, after checking that it parses and
// renders.
func SetTemplate(ctx context.Context, q db.Querier, l lists.List, name, body string) error {
	if templates.Lookup(name+".txt") == nil {
		return errs.Invalidf("no template %q (there are: %s)", name, strings.Join(TemplateNames(), ", "))
	}
	t, err := template.New(name).Parse(body)
	if err != nil {
		return errs.Invalidf("template %s: %v", name, err)
	}
	if err := t.Execute(&strings.Builder{}, view(l)); err != nil {
		return errs.Invalidf("template %s: %v", name, err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO list_templates (list_id, name, body) VALUES ($1, $2, $3)
		ON CONFLICT (list_id, name) DO UPDATE SET body = EXCLUDED.body, updated_at = now()`, l.ID, name, body)
	return err
}

// render uses the list's override when there is one, else the default.
func render(ctx context.Context, q db.Querier, name string, l lists.List) string {
	var b strings.Builder
	var body string
	if err := q.GetContext(ctx, &body, `SELECT body FROM list_templates WHERE list_id = $1 AND name = $2`, l.ID, name); err == nil {
		if t, err := template.New(name).Parse(body); err == nil && t.Execute(&b, view(l)) == nil {
			return b.String()
		}
		b.Reset()
	}
	if err := templates.ExecuteTemplate(&b, name+".txt", view(l)); err != nil {
		return "(" + name + " is not available)"
	}
	return b.String()
}
