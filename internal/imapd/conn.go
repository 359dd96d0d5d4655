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
//
// Since every write to the socket is this type's, it owns the write
// deadline: each socket write gets its own, and the library's
// SetWriteDeadline calls (made around writes into the buffer) are ignored,
// so they can't clear the deadline of a write already blocked on a client
// that stopped reading.
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
	writeTimeout  = 30 * time.Second // a client that reads nothing for this long is cut off
	closeTimeout  = time.Second      // what is left is given this long at close
	closeGrace    = 100 * time.Millisecond
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
		if err := c.flushLocked(writeTimeout); err != nil {
			return 0, err
		}
		if len(p) >= coalesceBytes {
			return c.writeSocket(p, writeTimeout)
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
	c.flushLocked(writeTimeout)
}

func (c *coalescingConn) flushLocked(timeout time.Duration) error {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.writeSocket(c.buf, timeout)
	c.buf = c.buf[:0]
	return err
}

// writeSocket writes p with its own deadline; a failure sticks.
func (c *coalescingConn) writeSocket(p []byte, timeout time.Duration) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// SetWriteDeadline is ignored: see the type's comment.
func (c *coalescingConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only, for the same reason.
func (c *coalescingConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// Flush sends what is buffered.
func (c *coalescingConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked(writeTimeout)
}

func (c *coalescingConn) Read(p []byte) (int, error) {
	if err := c.Flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Close sends what is left (the BYE, a TLS close_notify) within
// closeTimeout. A flush already under way (the timer's) gets closeGrace to
// finish: one blocked on a client that stopped reading is cut off then, so
// a server shutting down (which closes its connections one after another)
// is held up by such a client for that long at most.
func (c *coalescingConn) Close() error {
	if !c.mu.TryLock() {
		c.Conn.SetWriteDeadline(time.Now().Add(closeGrace))
		c.mu.Lock()
	}
	c.flushLocked(closeTimeout)
	c.mu.Unlock()
	return c.Conn.Close()
}
