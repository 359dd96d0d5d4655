package imapd

import (
	"net"
	"sync"
	"time"
)

// coalescingConn gathers the small writes the protocol library makes (it
// flushes after every response line, one write system call per FETCH
// response) and sends them together: a FETCH of 100,000 envelopes costs a
// few thousand writes instead of 100,000. Nothing waits longer than
// needed: the buffer goes out when it is full, before the connection
// reads (a server that waits for the client has said everything), and at
// most flushDelay after the first byte was buffered (unsolicited updates
// during IDLE, which no read follows).
type coalescingConn struct {
	net.Conn
	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
	err   error // a flush that failed; every later write fails with it
}

const (
	coalesceBytes = 64 << 10
	flushDelay    = 2 * time.Millisecond
)

func newCoalescingConn(c net.Conn) *coalescingConn {
	return &coalescingConn{Conn: c, buf: make([]byte, 0, coalesceBytes)}
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf)+len(p) > coalesceBytes {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= coalesceBytes {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	if c.timer == nil {
		c.timer = time.AfterFunc(flushDelay, c.flushAsync)
	}
	return len(p), nil
}

func (c *coalescingConn) flushAsync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *coalescingConn) flushLocked() error {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		c.err = err
	}
	return err
}

// Flush sends what is buffered.
func (c *coalescingConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *coalescingConn) Read(p []byte) (int, error) {
	if err := c.Flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *coalescingConn) Close() error {
	c.Flush()
	return c.Conn.Close()
}
