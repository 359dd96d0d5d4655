// Package deliver owns sending: workers that take copies from the
// outbound queue, render what each member receives (the archived post with
// the list's headers), hand it to the configured relay, and record the
// result so that failures are retried or given up on per recipient.
package deliver

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
)

// listHeaderNames are replaced on every copy: what a member's client shows
// for "list" actions must be this list's, never one a sender forged.
var listHeaderNames = []string{"List-Id", "List-Post", "List-Help", "List-Subscribe", "List-Unsubscribe",
	"List-Unsubscribe-Post", "List-Archive", "List-Owner", "Archived-At", "Precedence", "X-Loop"}

// Site says where the server is, for the URLs in list headers.
type Site struct {
	// ArchiveURL is the IMAP server's URL (RFC 5092), e.g.
	// imap://lists.example.org, the base of List-Archive and Archived-At.
	ArchiveURL string
	BaseURL    string // public HTTP URL for one-click unsubscribe; "" for none
}

// personalize gives one member's copy its own List-Unsubscribe, with the
// one-click URL (RFC 8058) before the mailto one, and the
// List-Unsubscribe-Post field that tells clients it is one-click (only
// worth sending on a DKIM-signed copy, which RFC 8058 requires).
func personalize(msg []byte, l lists.List, url string, oneClick bool) []byte {
	generic := "List-Unsubscribe: <mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindLeave, "") + ">\r\n"
	personal := "List-Unsubscribe: <" + url + ">, <mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindLeave, "") + ">\r\n"
	if oneClick {
		personal += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	}
	return bytes.Replace(msg, []byte(generic), []byte(personal), 1)
}

// listHeaders returns the RFC 2369/2919/5064 fields for one post, in the
// order they are written; article 0 (a digest) has no Archived-At. With
// a web archive (site.BaseURL), List-Archive names its page first and the
// IMAP mailbox second, and Archived-At is the post's permalink there.
func listHeaders(l lists.List, site Site, article int64, msgid string) [][2]string {
	name := l.DisplayName
	if name == "" {
		name = l.Address
	}
	post := "<mailto:" + l.Address + ">"
	if l.PostPolicy == lists.PostAnnounce {
		post = "NO"
	}
	fields := [][2]string{
		{"List-Id", fmt.Sprintf("%s <%s>", quotePhrase(mailmsg.Clean(name, 100)), mailaddr.ListID(l.Address))},
		{"List-Post", post},
		{"List-Help", "<mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, "") + "?subject=help>"},
		{"List-Subscribe", "<mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindJoin, "") + ">"},
		{"List-Unsubscribe", "<mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindLeave, "") + ">"},
		{"List-Archive", listArchive(l, site)},
		{"List-Owner", "<mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, "") + ">"},
	}
	switch {
	case article > 0 && site.BaseURL != "" && msgid != "":
		fields = append(fields, [2]string{"Archived-At", "<" + strings.TrimSuffix(site.BaseURL, "/") + lists.WebMessagePath(l, msgid) + ">"})
	case article > 0:
		fields = append(fields, [2]string{"Archived-At", "<" + lists.ArticleURL(site.ArchiveURL, l, article) + ">"})
	}
	return append(fields, [2]string{"Precedence", "list"}, [2]string{"X-Loop", l.Address})
}

// listArchive is the List-Archive value: the web archive's page when
// there is one, and the IMAP mailbox.
func listArchive(l lists.List, site Site) string {
	imap := "<" + lists.ArchiveURL(site.ArchiveURL, l) + ">"
	if site.BaseURL == "" {
		return imap
	}
	return "<" + strings.TrimSuffix(site.BaseURL, "/") + lists.WebPath(l) + ">, " + imap
}

// quotePhrase quotes a display name when it needs it.
func quotePhrase(s string) string {
	if strings.ContainsAny(s, "\"(),.:;<>@[\\]") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return s
}

// RenderPost returns the copy of an archived post that members receive:
// the list's headers replace any the post carried, the subject prefix is
// added once, Reply-To follows the list's setting, and the body is byte
// for byte the archived one (until a footer is added). raw must be
// canonical (CRLF), as the archive stores it.
//
// With rewriteFrom (DMARC mitigation), From: becomes "Author via List"
// <list address>, and the author stays reachable: in Reply-To: when the
// list leaves replies to the author (and the post set no Reply-To of its
// own), in Cc: when replies go to the list or elsewhere, and always in
// X-Original-From:.
func RenderPost(raw []byte, l lists.List, site Site, article int64, rewriteFrom bool) ([]byte, error) {
	return render(raw, l, site, article, func(h *textproto.Header) {
		author := h.Get("From")
		if rewriteFrom {
			rewriteAuthor(h, l)
		}
		replyTo(h, l, author, rewriteFrom)
		if l.SubjectPrefix != "" {
			h.Set("Subject", prefixSubject(h.Get("Subject"), l.SubjectPrefix))
		}
	})
}

// renderDigest gives a rendered digest issue the list's headers.
func renderDigest(raw []byte, l lists.List, site Site) ([]byte, error) {
	return render(raw, l, site, 0, func(*textproto.Header) {})
}

// render replaces the list's header fields of a message, after edit.
func render(raw []byte, l lists.List, site Site, article int64, edit func(h *textproto.Header)) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	for _, k := range listHeaderNames {
		h.Del(k)
	}
	edit(&h)
	fields := listHeaders(l, site, article, strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"))
	for i := len(fields) - 1; i >= 0; i-- { // Add inserts at the top
		h.Add(fields[i][0], fields[i][1])
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 1024)
	if err := textproto.WriteHeader(&out, h); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	if _, err := br.WriteTo(&out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// rewriteAuthor replaces From: with the list's address for DMARC.
func rewriteAuthor(h *textproto.Header, l lists.List) {
	orig := h.Get("From")
	mh := mail.Header{Header: message.Header{Header: *h}}
	display := ""
	if as, err := mh.AddressList("From"); err == nil && len(as) > 0 {
		display = as[0].Name
		if display == "" {
			display = as[0].Address
		}
	}
	if display == "" {
		display = mailmsg.Clean(orig, 100)
	}
	listName := l.DisplayName
	if listName == "" {
		listName = l.Address
	}
	h.Set("From", (&mail.Address{Name: mailmsg.Clean(display+" via "+listName, 200), Address: l.Address}).String())
	if orig != "" {
		h.Set("X-Original-From", orig)
	}
}

// replyTo applies the list's Reply-To setting. The author's own Reply-To
// is never dropped: with "author" it stays as it is; with "list" or an
// address, that address comes first and the author's follows it. When
// From: was rewritten, author (the original From:) is where replies to
// the author go: Reply-To with "author" (if the post set none), Cc
// otherwise, as Mailman does.
func replyTo(h *textproto.Header, l lists.List, author string, rewritten bool) {
	own := strings.TrimSpace(h.Get("Reply-To"))
	if l.ReplyTo == lists.ReplyToAuthor || l.ReplyTo == "" {
		if rewritten && own == "" && author != "" {
			h.Set("Reply-To", author)
		}
		return
	}
	target := l.ReplyTo
	if target == lists.ReplyToList {
		target = l.Address
	}
	if !strings.Contains(strings.ToLower(own), strings.ToLower(target)) {
		h.Set("Reply-To", joinAddrs(target, own))
	}
	if rewritten && author != "" && !strings.Contains(strings.ToLower(h.Get("Cc")), strings.ToLower(addrOf(author))) {
		h.Set("Cc", joinAddrs(strings.TrimSpace(h.Get("Cc")), author))
	}
}

// joinAddrs joins address-list values, leaving out empty ones.
func joinAddrs(vs ...string) string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return strings.Join(out, ", ")
}

// addrOf is the address in a From: value, or the value when it does not
// parse.
func addrOf(v string) string {
	if a, err := mail.ParseAddress(v); err == nil {
		return a.Address
	}
	return v
}

// prefixSubject puts the list's prefix in front of a subject exactly
// once: an existing occurrence (a reply to an earlier copy, "Re: [dev]
// question") moves to the front, so the result is "[dev] Re: question",
// never "[dev] Re: [dev] question". It works on the raw header value, so
// encoded words stay as they are.
func prefixSubject(subject, prefix string) string {
	if i := strings.Index(subject, prefix); i >= 0 {
		subject = strings.TrimSpace(subject[:i] + strings.TrimLeft(subject[i+len(prefix):], " "))
	}
	subject = strings.Join(strings.Fields(subject), " ")
	if subject == "" {
		return prefix
	}
	return prefix + " " + subject
}
