package imapd

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestCoalescingConn: small writes reach the peer together, before the
// server reads and after a short delay otherwise; a peer that stops
// reading can't hold a flush or Close for longer than their timeouts.
func TestCoalescingConn(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := newCoalescingConn(server)
	for _, s := range []string{"* 1 FETCH (UID 1)\r\n", "* 2 FETCH (UID 2)\r\n", "a OK done\r\n"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// The library clears deadlines around its writes; that must not
	// reach the socket.
	c.SetWriteDeadline(time.Time{})
	buf := make([]byte, 100)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadAtLeast(client, buf, 48)
	if err != nil || string(buf[:n]) != "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\na OK done\r\n" {
		t.Fatalf("peer read %q (%v), want the three lines in one piece after the flush delay", buf[:n], err)
	}

	// Nobody reads any more: writes fill the pipe and a flush blocks.
	go func() {
		big := bytes.Repeat([]byte("x"), 10*coalesceBytes)
		for range 10 {
			if _, err := c.Write(big[:coalesceBytes/2]); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	start := time.Now()
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
		if d := time.Since(start); d > closeTimeout+time.Second {
			t.Errorf("Close took %s with a peer that reads nothing, want at most %s", d, closeTimeout)
		}
	case <-time.After(closeTimeout + 5*time.Second):
		t.Fatal("Close hangs on a peer that reads nothing")
	}
}
