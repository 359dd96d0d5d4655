package connlimit

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestLimiter: the cap per client IP holds across every listener of one
// limiter, a refused client reads the refusal, and a closed connection
// frees its slot.
func TestLimiter(t *testing.T) {
	lim := New(Options{Max: 10, PerIP: 1, Refusal: []byte("421 busy\r\n"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var addrs []string
	accepted := make(chan net.Conn, 4)
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		l := lim.Listen(ln)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
		addrs = append(addrs, ln.Addr().String())
	}
	first, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	held := <-accepted

	second, err := net.Dial("tcp", addrs[1]) // the other port, the same IP
	if err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(second).ReadString('\n'); line != "421 busy\r\n" {
		t.Errorf("second connection from the same IP read %q, want the refusal", line)
	}
	second.Close()

	held.Close()
	third, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not given to the next connection")
	}
}
