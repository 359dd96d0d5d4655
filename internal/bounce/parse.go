// Package bounce owns understanding bounces: reading delivery status
// notifications (RFC 3464, and the common non-standard formats of real
// MTAs), telling them from auto-replies (RFC 3834) and feedback reports,
// and keeping each member's bounce score so that addresses that keep
// failing stop receiving mail.
//
// The parser is ours: go-msgauth and go-message have none, and the
// well-known DSN parsers are not Go. It walks the MIME tree iteratively
// with a depth bound, reads at most a bounded amount of text, and never
// fails: a message it cannot read is "not a bounce".
package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // legacy charsets in bounce texts
	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/mailmsg"
)

// Kind is what a message turned out to be.
type Kind string

// Kinds.
const (
	NotBounce Kind = "none"
	Bounce    Kind = "bounce"     // a delivery failure or delay report
	AutoReply Kind = "auto-reply" // vacation and similar (RFC 3834)
	Feedback  Kind = "feedback"   // an abuse/feedback report (ARF)
	Status    Kind = "status"     // a delivery report without a failure (delayed, delivered, relayed)
)

// Recipient is one address a report is about.
type Recipient struct {
	Address    string
	Status     string // RFC 3463 code, e.g. "5.1.1"; "" when unknown
	Action     string // failed, delayed, delivered, relayed, expanded
	Diagnostic string
}

// Hard reports whether the failure is permanent.
func (r Recipient) Hard() bool {
	return strings.HasPrefix(r.Status, "5") || r.Status == "" && r.Action == "failed"
}

// AuthorPolicy reports whether the refusal is about the author's domain
// policy (DMARC, DKIM, SPF), not the recipient: such bounces must not
// count against the member.
func (r Recipient) AuthorPolicy() bool {
	d := strings.ToLower(r.Diagnostic)
	return strings.HasPrefix(r.Status, "5.7.") &&
		(strings.Contains(d, "dmarc") || strings.Contains(d, "dkim") || strings.Contains(d, "spf"))
}

// Report is the result of Parse.
type Report struct {
	Kind       Kind
	Recipients []Recipient
}

// limits on hostile input
const (
	maxDepth     = 16
	maxParts     = 100
	maxTextBytes = 64 << 10
)

// Parse reads a message and says whether it is a bounce, and about whom.
func Parse(raw []byte) Report {
	raw = mailmsg.Canonicalize(raw)
	if bytes.HasPrefix(raw, []byte("From ")) { // an mbox envelope line
		if i := bytes.Index(raw, []byte("\r\n")); i >= 0 {
			raw = raw[i+2:]
		}
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return Report{Kind: NotBounce}
	}
	h := message.Header{Header: th}
	parts := walk(h, br)
	ct, params, _ := h.ContentType()
	if ct == "multipart/report" && strings.EqualFold(params["report-type"], "feedback-report") {
		return Report{Kind: Feedback}
	}
	for _, p := range parts {
		if p.kind == "message/delivery-status" || p.kind == "message/global-delivery-status" {
			if rs := parseDeliveryStatus(p.body); len(rs) > 0 {
				// Only failures count; a delay warning or a delivery
				// report must never add to a member's score.
				var failed []Recipient
				for _, r := range rs {
					if r.Action == "failed" || r.Action == "" && strings.HasPrefix(r.Status, "5") {
						failed = append(failed, r)
					}
				}
				if len(failed) == 0 {
					return Report{Kind: Status, Recipients: rs}
				}
				return Report{Kind: Bounce, Recipients: failed}
			}
		}
	}
	if r, ok := parseSES(parts); ok {
		return r
	}
	if isComplaint(h) {
		return Report{Kind: Feedback}
	}
	// Mail systems put Auto-Submitted on their bounces too (RFC 3834 asks
	// them to), so a failure report is looked for before an auto-reply.
	if looksLikeBounce(h) {
		return Report{Kind: Bounce, Recipients: scanText(parts)}
	}
	if isAutoReply(h) {
		return Report{Kind: AutoReply}
	}
	return Report{Kind: NotBounce}
}

var sesRE = regexp.MustCompile(`"notificationType"\s*:\s*"(Bounce|Complaint|Delivery)"`)

// parseSES reads Amazon SES notifications (JSON in a text part).
func parseSES(parts []part) (Report, bool) {
	for _, p := range parts {
		m := sesRE.FindSubmatch(p.body)
		if m == nil {
			continue
		}
		switch string(m[1]) {
		case "Complaint":
			return Report{Kind: Feedback}, true
		case "Delivery":
			return Report{Kind: NotBounce}, false
		}
		var rs []Recipient
		for _, a := range addressRE.FindAllString(string(p.body), 20) {
			if !isSystem(a) && !strings.Contains(a, "amazonses.com") {
				rs = append(rs, Recipient{Address: a, Action: "failed", Status: statusCode(string(p.body))})
				break
			}
		}
		return Report{Kind: Bounce, Recipients: rs}, true
	}
	return Report{}, false
}

var complaintSubjects = regexp.MustCompile(`(?i)^\s*(complaint about message|abuse report|spam report)`)

// isComplaint recognises abuse reports that are not in ARF form.
func isComplaint(h message.Header) bool {
	subj, _ := (&mailHeader{h}).subject()
	return complaintSubjects.MatchString(subj)
}

type part struct {
	kind string
	body []byte
}

// walk collects the leaf parts' types and (bounded) decoded bodies,
// iteratively with an explicit stack.
func walk(h message.Header, body io.Reader) []part {
	type frame struct{ mr *textproto.MultipartReader }
	var parts []part
	budget := maxTextBytes * 4
	leaf := func(h message.Header, r io.Reader) {
		t, _, err := h.ContentType()
		if err != nil {
			t = "text/plain"
		}
		var b []byte
		if e, err := message.New(h, r); err == nil || message.IsUnknownCharset(err) {
			b, _ = io.ReadAll(io.LimitReader(e.Body, int64(min(maxTextBytes, max(budget, 0)))))
		}
		budget -= len(b)
		parts = append(parts, part{kind: strings.ToLower(t), body: b})
	}
	open := func(h message.Header, r io.Reader) *textproto.MultipartReader {
		t, params, err := h.ContentType()
		if err == nil && strings.HasPrefix(t, "multipart/") && params["boundary"] != "" {
			return textproto.NewMultipartReader(r, params["boundary"])
		}
		return nil
	}
	mr := open(h, body)
	if mr == nil {
		leaf(h, body)
		return parts
	}
	stack := []frame{{mr}}
	for len(stack) > 0 && len(parts) < maxParts {
		p, err := stack[len(stack)-1].mr.NextPart()
		if err != nil {
			stack = stack[:len(stack)-1]
			continue
		}
		ph := message.Header{Header: p.Header}
		if child := open(ph, p); child != nil && len(stack) < maxDepth {
			stack = append(stack, frame{child})
			continue
		}
		leaf(ph, p)
	}
	return parts
}

// parseDeliveryStatus reads the per-recipient blocks of an RFC 3464
// report.
func parseDeliveryStatus(body []byte) []Recipient {
	var rs []Recipient
	br := bufio.NewReader(bytes.NewReader(mailmsg.Canonicalize(body)))
	for block := 0; block < maxParts; block++ {
		for { // skip blank lines between blocks
			b, err := br.Peek(2)
			if err != nil || !bytes.Equal(b, []byte("\r\n")) {
				break
			}
			br.Discard(2)
		}
		h, err := textproto.ReadHeader(br)
		if h.Len() == 0 {
			break
		}
		addr := addressOf(h.Get("Final-Recipient"))
		if addr == "" {
			addr = addressOf(h.Get("Original-Recipient"))
		}
		if addr != "" {
			rs = append(rs, Recipient{Address: addr, Status: statusCode(h.Get("Status")),
				Action: strings.ToLower(strings.TrimSpace(h.Get("Action"))), Diagnostic: mailmsg.Clean(h.Get("Diagnostic-Code"), 500)})
		}
		if err != nil && !errors.Is(err, io.EOF) {
			break
		}
		if _, err := br.Peek(1); err != nil {
			break
		}
	}
	return rs
}

var (
	statusRE  = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)
	addressRE = regexp.MustCompile(`[A-Za-z0-9._%+=/'!#$&*?^{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	replyRE   = regexp.MustCompile(`\b([45])\d\d\b`)
)

func statusCode(s string) string { return statusRE.FindString(s) }

// addressOf reads "rfc822; user@example.org" (or just the address).
func addressOf(v string) string {
	if _, a, ok := strings.Cut(v, ";"); ok {
		v = a
	}
	v = strings.Trim(strings.TrimSpace(v), "<>")
	if addressRE.MatchString(v) {
		return addressRE.FindString(v)
	}
	return ""
}

var autoSubjects = regexp.MustCompile(`(?i)^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|vacation|absence|autoreply|auto:)`)

// isAutoReply recognises RFC 3834 auto-replies and the usual vacation
// messages that do not follow it.
func isAutoReply(h message.Header) bool {
	as := strings.ToLower(h.Get("Auto-Submitted"))
	if strings.HasPrefix(as, "auto-replied") {
		return true
	}
	if h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" || strings.EqualFold(h.Get("X-Auto-Response-Suppress"), "All") && h.Get("X-MS-Exchange-Inbox-Rules-Loop") != "" {
		return true
	}
	subj, _ := (&mailHeader{h}).subject()
	return autoSubjects.MatchString(strings.TrimSpace(subj))
}

var bounceSubjects = regexp.MustCompile(`(?i)(undeliver|delivery (status|failure|notification|has failed|problem)|mail delivery|returned mail|failure notice|could not be delivered|not delivered|delivery failed|mail system error|nondeliverable|non-delivery|rejected|bounce|warning: could not send|message (blocked|not sent)|メールエラー|未配信|配信不能)`)

// looksLikeBounce recognises failure reports that are not RFC 3464.
func looksLikeBounce(h message.Header) bool {
	from := strings.ToLower(h.Get("From"))
	for _, who := range []string{"mailer-daemon", "postmaster", "post_master", "mail delivery", "mail.delivery", "mailerdaemon", "mdaemon"} {
		if strings.Contains(from, who) {
			return true
		}
	}
	subj, _ := (&mailHeader{h}).subject()
	return bounceSubjects.MatchString(subj)
}

// scanText finds failed recipients in human-readable failure texts: an
// address on a line that carries an SMTP code, or, failing that, the
// first address in the report that is not a mail system's own.
func scanText(parts []part) []Recipient {
	var rs []Recipient
	seen := map[string]bool{}
	for _, p := range parts {
		if !strings.HasPrefix(p.kind, "text/") || p.kind == "text/rfc822-headers" {
			continue
		}
		lines := strings.Split(string(p.body), "\n")
		for i, line := range lines {
			addr := addressRE.FindString(line)
			if addr == "" || seen[strings.ToLower(addr)] || isSystem(addr) {
				continue
			}
			context := line
			if i+1 < len(lines) {
				context += " " + lines[i+1]
			}
			if i+2 < len(lines) {
				context += " " + lines[i+2]
			}
			code := statusCode(context)
			m := replyRE.FindStringSubmatch(context)
			if code == "" && m == nil && len(rs) > 0 {
				continue
			}
			if code == "" && m != nil {
				code = m[1] + ".0.0"
			}
			seen[strings.ToLower(addr)] = true
			rs = append(rs, Recipient{Address: addr, Status: code, Action: "failed", Diagnostic: mailmsg.Clean(context, 500)})
			if len(rs) >= 10 {
				return rs
			}
		}
		if len(rs) > 0 {
			return rs
		}
	}
	return rs
}

func isSystem(addr string) bool {
	l := strings.ToLower(addr)
	for _, s := range []string{"mailer-daemon@", "postmaster@", "no-reply@", "noreply@"} {
		if strings.HasPrefix(l, s) {
			return true
		}
	}
	return false
}

type mailHeader struct{ h message.Header }

func (m *mailHeader) subject() (string, error) { return m.h.Text("Subject") }
