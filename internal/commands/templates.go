package commands

import (
	"embed"
	"strings"
	"text/template"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/notice"
)

// The reply texts: plain text templates, embedded.
//
//go:embed templates/*.txt
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.txt"))

// listView is what the templates see.
type listView struct {
	Address, Name, Description, Policy, Archive string
	Request, Join, Leave, Owner                 string
}

func view(l lists.List) listView {
	return listView{Address: l.Address, Name: l.DisplayName, Description: l.Description,
		Policy: string(l.PostPolicy), Archive: string(l.Archive),
		Request: notice.ServiceAddr(l, "-request"), Join: notice.ServiceAddr(l, "-join"),
		Leave: notice.ServiceAddr(l, "-leave"), Owner: notice.ServiceAddr(l, "-owner")}
}

func render(name string, l lists.List) string {
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, view(l)); err != nil {
		return "(" + name + " is not available: " + err.Error() + ")"
	}
	return b.String()
}

func helpText(l lists.List) string    { return render("help.txt", l) }
func infoText(l lists.List) string    { return render("info.txt", l) }
func welcomeText(l lists.List) string { return render("welcome.txt", l) }
