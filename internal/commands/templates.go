package commands

import (
	"context"
	"embed"
	"net/url"
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

// TemplateNames lists the templates a list can override. "reading" is
// the part of the others that says how to read the archive; a list's
// own texts may use it too ({{template "reading.txt" .}}).
func TemplateNames() []string {
	var names []string
	for _, t := range templates.Templates() {
		names = append(names, strings.TrimSuffix(t.Name(), ".txt"))
	}
	sort.Strings(names)
	return names
}

// Access says where members read the archive.
type Access struct {
	IMAPURL string // the IMAP server's URL: imap://host[:port] (STARTTLS) or imaps://host[:port]
	WebURL  string // the web archive's base URL; "" when there is none
}

// listView is what the templates see.
type listView struct {
	Address, Name, Description, Policy, Archive string
	PolicyText                                  string // who may post, in a sentence
	Request, Join, Leave, Owner                 string
	// Where to read the archive: the IMAP server, its port, whether the
	// connection is TLS from the start ("TLS") or upgraded ("STARTTLS"),
	// the mailbox, the IMAP URL of the mailbox, and the web archive's
	// page for the list ("" when there is none).
	IMAPServer, IMAPPort, IMAPSecurity, Mailbox, ArchiveURL, WebURL string
	// User and Password are set only in the mail that gives a member a
	// new archive password.
	User, Password string
}

func view(l lists.List, a Access) listView {
	v := listView{Address: l.Address, Name: l.DisplayName, Description: l.Description,
		Policy: string(l.PostPolicy), Archive: string(l.Archive),
		Request: mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, ""), Join: mailaddr.ServiceAddr(l.Address, mailaddr.KindJoin, ""),
		Leave: mailaddr.ServiceAddr(l.Address, mailaddr.KindLeave, ""), Owner: mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""),
		Mailbox: l.Address, PolicyText: policyText[l.PostPolicy]}
	if u, err := url.Parse(a.IMAPURL); err == nil && u.Host != "" {
		v.IMAPServer, v.IMAPPort, v.IMAPSecurity = u.Hostname(), u.Port(), "STARTTLS"
		if u.Scheme == "imaps" {
			v.IMAPSecurity = "TLS"
		}
		switch {
		case v.IMAPPort == "0":
			v.IMAPPort = "" // a listener on a port picked at start: unknown to the CLI
		case v.IMAPPort == "":
			v.IMAPPort = map[string]string{"imaps": "993"}[u.Scheme]
			if v.IMAPPort == "" {
				v.IMAPPort = "143"
			}
		}
		v.ArchiveURL = lists.ArchiveURL(a.IMAPURL, l)
	}
	if a.WebURL != "" {
		v.WebURL = strings.TrimSuffix(a.WebURL, "/") + "/" + url.PathEscape(l.Address) + "/"
	}
	return v
}

// policyText says each posting policy in a sentence.
var policyText = map[lists.PostPolicy]string{
	lists.PostOpen:      "Anyone may post.",
	lists.PostMembers:   "Members may post.",
	lists.PostModerated: "Every post waits for a moderator's approval.",
	lists.PostAnnounce:  "Only the owners and moderators post.",
}

// SetTemplate stores a list's override, after checking that it parses and
// renders.
func SetTemplate(ctx context.Context, q db.Querier, l lists.List, name, body string) error {
	if templates.Lookup(name+".txt") == nil {
		return errs.Invalidf("no template %q (there are: %s)", name, strings.Join(TemplateNames(), ", "))
	}
	t, err := override(name, body)
	if err != nil {
		return errs.Invalidf("template %s: %v", name, err)
	}
	if err := t.Execute(&strings.Builder{}, view(l, Access{IMAPURL: "imap://imap.example"})); err != nil {
		return errs.Invalidf("template %s: %v", name, err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO list_templates (list_id, name, body) VALUES ($1, $2, $3)
		ON CONFLICT (list_id, name) DO UPDATE SET body = EXCLUDED.body, updated_at = now()`, l.ID, name, body)
	return err
}

// override parses a list's own text beside the built-in ones, which it
// may use.
func override(name, body string) (*template.Template, error) {
	t, err := templates.Clone()
	if err != nil {
		return nil, err
	}
	return t.New("list:" + name).Parse(body)
}

// render uses the list's override when there is one, else the default.
func (p *Processor) render(ctx context.Context, q db.Querier, name string, l lists.List) string {
	return renderView(ctx, q, name, l, view(l, p.Archive))
}

// renderView is a list's text name for v: its override when there is one,
// else the built-in text.
func renderView(ctx context.Context, q db.Querier, name string, l lists.List, v listView) string {
	var b strings.Builder
	var body string
	if err := q.GetContext(ctx, &body, `SELECT body FROM list_templates WHERE list_id = $1 AND name = $2`, l.ID, name); err == nil {
		if t, err := override(name, body); err == nil && t.Execute(&b, v) == nil {
			return b.String()
		}
		b.Reset()
	}
	if err := templates.ExecuteTemplate(&b, name+".txt", v); err != nil {
		return "(" + name + " is not available)"
	}
	return b.String()
}

// Builtin is the built-in text name, as the CLI shows it (unrendered).
func Builtin(name string) (string, bool) {
	b, err := templateFS.ReadFile("templates/" + name + ".txt")
	return string(b), err == nil
}

// Template returns a list's text name as it is stored: the list's own
// when it has one (own), else the built-in one.
func Template(ctx context.Context, q db.Querier, l lists.List, name string) (body string, own bool, err error) {
	builtin, ok := Builtin(name)
	if !ok {
		return "", false, errs.Invalidf("no template %q (there are: %s)", name, strings.Join(TemplateNames(), ", "))
	}
	err = q.GetContext(ctx, &body, `SELECT body FROM list_templates WHERE list_id = $1 AND name = $2`, l.ID, name)
	if db.IsNoRows(err) {
		return builtin, false, nil
	}
	return body, err == nil, err
}

// ResetTemplate drops a list's own text name, so the built-in one is used
// again, and reports whether there was one.
func ResetTemplate(ctx context.Context, q db.Querier, l lists.List, name string) (bool, error) {
	if _, ok := Builtin(name); !ok {
		return false, errs.Invalidf("no template %q (there are: %s)", name, strings.Join(TemplateNames(), ", "))
	}
	res, err := q.ExecContext(ctx, `DELETE FROM list_templates WHERE list_id = $1 AND name = $2`, l.ID, name)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
