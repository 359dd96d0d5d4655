package deliver

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/htmlindex"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
)

// A list's footer is added to every copy and digest, in one of three
// ways, chosen so that nothing the author wrote is edited and no
// signature breaks:
//
//   - a message that is one text/plain part gets it at the end of its
//     text, after a "-- " line, in the part's own charset and transfer
//     encoding; when the charset cannot hold the footer's characters the
//     text is converted to UTF-8, and 7-bit text that gains 8-bit
//     characters becomes quoted-printable;
//   - a multipart/mixed gets it as a last text/plain part;
//   - anything else (HTML, multipart/alternative, multipart/signed, a text
//     in a charset parley cannot convert) is wrapped, as Mailman does, in
//     a multipart/mixed whose first part is the message's body exactly as
//     it was and whose second is the footer. A PGP/MIME or S/MIME
//     signature stays valid: the signed part is not touched.
//
// The author's own DKIM signature, if it covered the body, does not
// survive any of these; that is why lists that add footers usually
// rewrite From: for DMARC (the list's dmarc setting), and why the footer
// is off by default.

// footerText fills a footer template for one member (member and unsub
// "" for a footer without personal fields).
func (s *Service) footerText(l lists.List, tmpl, member, unsub string) string {
	leave := "mailto:" + mailaddr.ServiceAddr(l.Address, mailaddr.KindLeave, "")
	if unsub == "" {
		unsub = leave
	}
	name := l.DisplayName
	if name == "" {
		name = l.Address
	}
	return strings.NewReplacer(
		"{list}", l.Address,
		"{list_name}", name,
		"{request}", mailaddr.ServiceAddr(l.Address, mailaddr.KindRequest, ""),
		"{owner}", mailaddr.ServiceAddr(l.Address, mailaddr.KindOwner, ""),
		"{archive}", lists.ArchiveURL(s.o.Site.ArchiveURL, l),
		"{member}", member,
		"{unsubscribe}", unsub,
	).Replace(tmpl)
}

// addFooter adds the list's footer to a job's message when it is the
// same for every member, and otherwise keeps the template for personal.
func (s *Service) addFooter(j *job) error {
	tmpl := j.list.Footer
	if strings.TrimSpace(tmpl) == "" {
		return nil
	}
	oneClick := s.o.Site.BaseURL != "" && s.o.Unsub != nil
	if strings.Contains(tmpl, "{member}") || (oneClick && strings.Contains(tmpl, "{unsubscribe}")) {
		j.footer = tmpl
		return nil
	}
	msg, err := applyFooter(j.msg, s.footerText(j.list, tmpl, "", ""))
	if err != nil {
		return err
	}
	j.msg = msg
	return nil
}

// applyFooter adds text (LF or CRLF line ends) to a message in CRLF form.
func applyFooter(msg []byte, text string) ([]byte, error) {
	text = strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n") + "\n"
	br := bufio.NewReader(bytes.NewReader(msg))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	body, err := io.ReadAll(br)
	if err != nil {
		return nil, err
	}
	mh := message.Header{Header: h}
	t, params, err := mh.ContentType()
	if !mh.Has("Content-Type") {
		t, params, err = "text/plain", map[string]string{}, nil
	}
	disp, _, _ := mh.ContentDisposition()
	switch {
	case err == nil && t == "text/plain" && disp != "attachment":
		if nb, ok := appendText(&h, params, body, text); ok {
			return join(h, nb)
		}
	case err == nil && t == "multipart/mixed" && params["boundary"] != "":
		if nb, ok := appendPart(body, params["boundary"], text); ok {
			return join(h, nb)
		}
	}
	return wrapFooter(h, body, text)
}

func join(h textproto.Header, body []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(body) + 1024)
	if err := textproto.WriteHeader(&out, h); err != nil {
		return nil, err
	}
	out.Write(body)
	return out.Bytes(), nil
}

// asciiSupersets are the charsets whose text can end in a few ASCII
// lines without any shift state to undo (unlike ISO-2022-JP or UTF-16).
var asciiSupersets = []string{"utf-8", "us-ascii", "iso-8859-", "windows-125", "koi8-", "gb2312", "gbk", "gb18030", "big5", "euc-", "shift_jis"}

// appendText adds the footer to a single text part; false when it cannot
// (a transfer encoding or charset it does not know), so the caller wraps.
func appendText(h *textproto.Header, params map[string]string, body []byte, text string) ([]byte, bool) {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	charset := strings.ToLower(params["charset"])
	if charset == "" {
		charset = "us-ascii"
	}
	ok := false
	for _, p := range asciiSupersets {
		ok = ok || strings.HasPrefix(charset, p)
	}
	if !ok {
		return nil, false
	}
	decoded, ok := decodeCTE(cte, body)
	if !ok {
		return nil, false
	}
	footer, fits := encodeIn(charset, "-- \n"+text)
	if !fits {
		// Re-encode the whole text in UTF-8, which holds any footer.
		utf, err := toUTF8(charset, decoded)
		if err != nil {
			return nil, false
		}
		decoded, footer, charset = utf, []byte("-- \n"+text), "utf-8"
		params["charset"] = charset
		mh := message.Header{Header: *h}
		mh.SetContentType("text/plain", params)
		*h = mh.Header
	}
	if len(decoded) > 0 && !bytes.HasSuffix(decoded, []byte("\n")) {
		decoded = append(decoded, '\r', '\n')
	}
	full := append(decoded, bytes.ReplaceAll(footer, []byte("\n"), []byte("\r\n"))...)
	switch {
	case cte == "quoted-printable" || ((cte == "" || cte == "7bit") && !isASCII(full)):
		if cte != "quoted-printable" {
			h.Set("Content-Transfer-Encoding", "quoted-printable")
		}
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(full)
		w.Close()
		return b.Bytes(), true
	case cte == "base64":
		return base64Lines(full), true
	}
	return full, true
}

// decodeCTE undoes a transfer encoding.
func decodeCTE(cte string, body []byte) ([]byte, bool) {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return body, true
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		return b, err == nil
	case "base64":
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, &stripCRLF{r: bytes.NewReader(body)}))
		return b, err == nil
	}
	return nil, false
}

// encodeIn encodes text in charset; false when the charset cannot hold it.
func encodeIn(charset, text string) ([]byte, bool) {
	if isASCII([]byte(text)) {
		return []byte(text), true
	}
	if charset == "utf-8" {
		return []byte(text), true
	}
	enc, err := htmlindex.Get(charset)
	if err != nil || charset == "us-ascii" {
		return nil, false
	}
	b, err := enc.NewEncoder().Bytes([]byte(text)) // fails on a character it cannot hold
	return b, err == nil
}

func toUTF8(charset string, b []byte) ([]byte, error) {
	if charset == "us-ascii" || charset == "utf-8" {
		return b, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Bytes(b)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc + "\r\n")
	return out.Bytes()
}

// stripCRLF drops line breaks, which base64 bodies carry and the decoder
// does not take.
type stripCRLF struct{ r io.Reader }

func (s *stripCRLF) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// footerPart is the footer as a MIME part of its own.
func footerPart(text string) string {
	crlf := strings.ReplaceAll(text, "\n", "\r\n")
	if isASCII([]byte(text)) {
		return "Content-Type: text/plain; charset=\"us-ascii\"\r\nContent-Disposition: inline\r\n" +
			"Content-Transfer-Encoding: 7bit\r\n\r\n" + crlf
	}
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	return "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Disposition: inline\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + b.String()
}

// appendPart adds the footer as the last part of a multipart/mixed body;
// false when the body has no closing delimiter to put it before.
func appendPart(body []byte, boundary, text string) ([]byte, bool) {
	closing := []byte("\r\n--" + boundary + "--")
	i := bytes.LastIndex(body, closing)
	if i < 0 {
		if !bytes.HasPrefix(body, closing[2:]) {
			return nil, false
		}
		i = 0 // no part at all before the closing delimiter
	}
	var out bytes.Buffer
	out.Write(body[:i])
	out.WriteString("\r\n--" + boundary + "\r\n" + footerPart(text))
	out.Write(body[i:])
	return out.Bytes(), true
}

// wrapFooter wraps the message's body, with its own Content-* fields, as
// the first part of a new multipart/mixed whose second part is the footer.
func wrapFooter(h textproto.Header, body []byte, text string) ([]byte, error) {
	var content [][]byte
	for f := h.Fields(); f.Next(); {
		if strings.HasPrefix(strings.ToLower(f.Key()), "content-") {
			raw, _ := f.Raw()
			content = append(content, raw)
			f.Del()
		}
	}
	var inner textproto.Header
	for i := len(content) - 1; i >= 0; i-- { // AddRaw puts a field first
		inner.AddRaw(content[i])
	}
	sum := sha256.Sum256(body)
	boundary := "=_parley_footer_" + hex.EncodeToString(sum[:12])
	for bytes.Contains(body, []byte("--"+boundary)) {
		boundary += "_"
	}
	if !h.Has("Mime-Version") {
		h.Set("MIME-Version", "1.0")
	}
	h.Set("Content-Type", "multipart/mixed; boundary=\""+boundary+"\"")
	var out bytes.Buffer
	out.WriteString("--" + boundary + "\r\n")
	if err := textproto.WriteHeader(&out, inner); err != nil {
		return nil, err
	}
	out.Write(body)
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
		out.WriteString("\r\n")
	}
	out.WriteString("\r\n--" + boundary + "\r\n" + footerPart(text))
	out.WriteString("\r\n--" + boundary + "--\r\n")
	return join(h, out.Bytes())
}
