package deliver

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"

	"github.com/parley-list/parley/internal/mailmsg"
)

// TestApplyFooter adds a footer to each shape of message and reads the
// result back as a client would: the footer is where the package doc
// says, the text before it reads as it did, and a body that was wrapped
// is byte for byte the original.
func TestApplyFooter(t *testing.T) {
	t.Parallel()
	const head = "From: a@example.org\nSubject: s\nMessage-ID: <x@example.org>\n"
	tests := []struct {
		name, msg, footer string
		how               string // "text", "part" or "wrap"
		wantCharset       string // of the text part that holds the footer
		wantCTE           string
	}{
		{"ascii", head + "\nhello\n", "Unsubscribe: {u}", "text", "", ""},
		{"no final newline", head + "\nhello", "bye", "text", "", ""},
		{"qp utf-8", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n", "Grüße zurück", "text", "utf-8", "quoted-printable"},
		{"base64", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQK\n", "bye", "text", "utf-8", "base64"},
		{"latin-1 holds it", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf\xe9\n", "café", "text", "iso-8859-1", "8bit"},
		{"ascii gains 8-bit", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nhello\n", "café", "text", "utf-8", "quoted-printable"},
		{"koi8-r cannot hold it", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n", "日本", "text", "utf-8", "8bit"},
		{"koi8-r in 7 bits", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n\n=F0=D2=C9=D7=C5=D4\n", "日本", "text", "utf-8", "quoted-printable"},
		{"iso-2022-jp", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-2022-jp\nContent-Transfer-Encoding: 7bit\n\n\x1b$B$3$s\x1b(B\n", "bye", "wrap", "", ""},
		{"unknown charset", head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=x-nonesuch\n\nhello\n", "bye", "wrap", "", ""},
		{"html", head + "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<p>hello</p>\n", "bye", "wrap", "", ""},
		{"alternative", head + "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/html\n\n<p>hi</p>\n--b--\n", "bye", "wrap", "", ""},
		{"signed", head + "MIME-Version: 1.0\nContent-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"; micalg=pgp-sha256\n\n--s\nContent-Type: text/plain\n\nsigned text\n--s\nContent-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n--s--\n", "bye", "wrap", "", ""},
		{"mixed", head + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nsee attached\n--m\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--m--\n", "bye", "part", "", ""},
		{"mixed without its end", head + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\ncut short\n", "bye", "wrap", "", ""},
		{"attachment", head + "MIME-Version: 1.0\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nfile\n", "bye", "wrap", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := mailmsg.Canonicalize([]byte(tc.msg))
			got, err := applyFooter(orig, tc.footer)
			if err != nil {
				t.Fatal(err)
			}
			m, err := message.Read(bytes.NewReader(got))
			if err != nil {
				t.Fatalf("result does not parse: %v\n%s", err, got)
			}
			origBody := orig[mailmsg.HeaderLen(orig):]
			switch tc.how {
			case "text":
				checkText(t, m, tc.footer, tc.wantCharset, tc.wantCTE)
			case "part", "wrap":
				last, first := lastPart(t, m)
				if b, _ := io.ReadAll(last.Body); !strings.Contains(string(b), tc.footer) {
					t.Errorf("last part %q lacks the footer", b)
				}
				if tc.how == "wrap" && !bytes.Contains(got, append(first, origBody...)) {
					t.Errorf("the wrapped body is not the original byte for byte:\n%s", got)
				}
				if typ, _, _ := m.Header.ContentType(); typ != "multipart/mixed" {
					t.Errorf("top type %s, want multipart/mixed", typ)
				}
			}
		})
	}
}

// checkText reads a one-part result: the text ends with "-- " and the
// footer, decoded in the part's charset.
func checkText(t *testing.T, m *message.Entity, footer, charset, cte string) {
	t.Helper()
	_, params, _ := m.Header.ContentType()
	if charset != "" && !strings.EqualFold(params["charset"], charset) {
		t.Errorf("charset %q, want %q", params["charset"], charset)
	}
	if got := m.Header.Get("Content-Transfer-Encoding"); cte != "" && !strings.EqualFold(got, cte) {
		t.Errorf("transfer encoding %q, want %q", got, cte)
	}
	b, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	if !strings.HasSuffix(text, "\n-- \n"+footer+"\n") {
		t.Errorf("text %q does not end with the footer %q", text, footer)
	}
}

// lastPart returns a multipart's last part, and the header block of its
// first as written (for the byte comparison of a wrapped body).
func lastPart(t *testing.T, m *message.Entity) (*message.Entity, []byte) {
	t.Helper()
	mr := m.MultipartReader()
	if mr == nil {
		t.Fatal("not a multipart")
	}
	var last *message.Entity
	var first []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) {
			t.Fatal(err)
		}
		if first == nil {
			var b bytes.Buffer
			textproto.WriteHeader(&b, p.Header.Header)
			first = b.Bytes()
		}
		b, _ := io.ReadAll(p.Body)
		last = &message.Entity{Header: p.Header, Body: bytes.NewReader(b)}
	}
	if last == nil {
		t.Fatal("no parts")
	}
	return last, first
}

// FuzzApplyFooter: whatever the message (it is a post from anyone), the
// footer is added or the message is wrapped, the result parses, and
// nothing panics; a message whose header does not parse is refused.
func FuzzApplyFooter(f *testing.F) {
	f.Add([]byte("Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=F0=D2\r\n"), "日本")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"), "bye")
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n"), "bye")
	f.Add([]byte("Content-Type: multipart/signed; boundary=\"\"\r\n\r\n"), "-- \n{list}")
	f.Fuzz(func(t *testing.T, raw []byte, footer string) {
		msg := mailmsg.Canonicalize(raw)
		if _, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg))); err != nil {
			return
		}
		got, err := applyFooter(msg, footer)
		if err != nil {
			t.Fatalf("applyFooter: %v", err)
		}
		if _, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(got))); err != nil {
			t.Fatalf("the result's header does not parse: %v\n%q", err, got)
		}
	})
}
