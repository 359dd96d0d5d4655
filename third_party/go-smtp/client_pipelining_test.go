package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// pipelineServer is a scripted server on one end of a pipe: it greets,
// answers EHLO with the given extensions, then for each step reads the
// given number of lines before writing the given answers. It sends what
// it read on got.
type pipelineStep struct {
	read    int    // command lines to read before answering
	data    bool   // read a message up to its final dot instead
	answers string // CRLF lines to write
}

func pipelineServer(t *testing.T, ext string, steps []pipelineStep) (*Client, chan string) {
	t.Helper()
	cc, sc := net.Pipe()
	got := make(chan string, 1)
	go func() {
		defer sc.Close()
		r := bufio.NewReader(sc)
		var seen strings.Builder
		io := func(s string) { sc.Write([]byte(s)) }
		io("220 test ready\r\n")
		r.ReadString('\n') // EHLO
		io("250-test\r\n" + ext + "250 8BITMIME\r\n")
		for _, st := range steps {
			for n := 0; n < st.read || st.data; n++ {
				l, err := r.ReadString('\n')
				if err != nil {
					got <- seen.String()
					return
				}
				seen.WriteString(l)
				if st.data && l == ".\r\n" {
					break
				}
			}
			io(st.answers)
		}
		got <- seen.String()
	}()
	c := NewClient(cc)
	c.CommandTimeout, c.SubmissionTimeout = 5*time.Second, 5*time.Second
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c, got
}

func TestSendPipelined(t *testing.T) {
	// The server answers nothing until it has MAIL, both RCPTs and DATA:
	// a client that waited for each answer would never finish.
	c, got := pipelineServer(t, "250-PIPELINING\r\n", []pipelineStep{
		{read: 4, answers: "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go on\r\n"},
		{data: true, answers: "250 queued\r\n"},
	})
	msg := []byte("Subject: x\r\n\r\n.leading dot\r\nbare lf\nlast")
	rcptErrs, err := c.SendPipelined("from@example.org", nil, []string{"a@example.org", "b@example.org"}, msg)
	if err != nil {
		t.Fatalf("SendPipelined: %v", err)
	}
	var se *SMTPError
	if rcptErrs[0] != nil || !errors.As(rcptErrs[1], &se) || se.Code != 550 {
		t.Errorf("recipients' errors = %v, want nil and a 550", rcptErrs)
	}
	c.Close()
	want := "MAIL FROM:<from@example.org> BODY=8BITMIME\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" +
		"Subject: x\r\n\r\n..leading dot\r\nbare lf\r\nlast\r\n.\r\n"
	if s := <-got; s != want {
		t.Errorf("the server read\n%q\nwant\n%q", s, want)
	}
}

func TestSendPipelinedAllRefused(t *testing.T) {
	c, got := pipelineServer(t, "250-PIPELINING\r\n", []pipelineStep{
		{read: 3, answers: "250 ok\r\n550 no\r\n554 no valid recipients\r\n"},
	})
	rcptErrs, err := c.SendPipelined("from@example.org", nil, []string{"a@example.org"}, []byte("x\r\n"))
	if err != nil || rcptErrs[0] == nil {
		t.Errorf("SendPipelined = %v, %v; want the recipient's refusal and no error", rcptErrs, err)
	}
	c.Close()
	if s := <-got; strings.Contains(s, "x\r\n") {
		t.Errorf("the message was sent with no recipient: %q", s)
	}
}

func TestSendPipelinedMailRefused(t *testing.T) {
	c, _ := pipelineServer(t, "250-PIPELINING\r\n", []pipelineStep{
		{read: 3, answers: "451 try later\r\n503 no MAIL\r\n503 no MAIL\r\n"},
	})
	rcptErrs, err := c.SendPipelined("from@example.org", nil, []string{"a@example.org"}, []byte("x\r\n"))
	var se *SMTPError
	if rcptErrs != nil || !errors.As(err, &se) || se.Code != 451 {
		t.Errorf("SendPipelined = %v, %v; want no recipients' errors and MAIL's 451", rcptErrs, err)
	}
	c.Close()
}

func TestSendPipelinedWithoutPipelining(t *testing.T) {
	// One command, one answer: the server reads a line at a time.
	c, got := pipelineServer(t, "", []pipelineStep{
		{read: 1, answers: "250 ok\r\n"}, {read: 1, answers: "250 ok\r\n"}, {read: 1, answers: "354 go on\r\n"},
		{data: true, answers: "250 queued\r\n"},
	})
	rcptErrs, err := c.SendPipelined("from@example.org", nil, []string{"a@example.org"}, []byte("x\r\n"))
	if err != nil || rcptErrs[0] != nil {
		t.Fatalf("SendPipelined = %v, %v", rcptErrs, err)
	}
	c.Close()
	if s := <-got; !strings.HasSuffix(s, "DATA\r\nx\r\n.\r\n") {
		t.Errorf("the server read %q", s)
	}
}

func TestWriteDotted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\r\n", "a\r\n"},
		{".\r\n..\r\n", "..\r\n...\r\n"},
		{"a\nb", "a\r\nb\r\n"},
		{"a\r\n.b", "a\r\n..b\r\n"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		writeDotted(w, []byte(tc.in))
		w.Flush()
		if b.String() != tc.want {
			t.Errorf("writeDotted(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}
