// Package connlimit owns the cap on simultaneous connections to a
// listener, in total and per client IP, which neither go-smtp nor
// go-imap's server has. A connection over a cap is told so in the
// protocol's words and closed at once, so one busy or hostile client
// cannot take every slot.
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Options configure a Limiter.
type Options struct {
	Max, PerIP int    // 0: no cap
	Refusal    []byte // written to a refused connection, e.g. "421 …\r\n"
	Log        *slog.Logger
	// Wrap, when set, wraps each admitted connection (inside the one that
	// gives the slot back on Close).
	Wrap func(net.Conn) net.Conn
}

// Limiter counts connections; the listeners it wraps share its caps (a
// server's plain and TLS ports, say).
type Limiter struct {
	o Options

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// New returns a Limiter.
func New(o Options) *Limiter { return &Limiter{o: o, byIP: map[string]int{}} }

// Listen returns ln with the caps applied.
func (l *Limiter) Listen(ln net.Listener) net.Listener {
	return &listener{Listener: ln, l: l}
}

type listener struct {
	net.Listener
	l *Limiter
}

func (ll *listener) Accept() (net.Conn, error) {
	l := ll.l
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if l.admit(ip) {
			inner := c
			if l.o.Wrap != nil {
				inner = l.o.Wrap(c)
			}
			return &conn{Conn: inner, l: l, ip: ip}, nil
		}
		// Info, not Warn: any one client can reach the cap per IP; this
		// is the cap doing its job.
		l.o.Log.Info("connection refused: too many connections", "event", "conn_limit", "remote", c.RemoteAddr().String())
		go l.refuse(c)
	}
}

func (l *Limiter) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.o.Max > 0 && l.total >= l.o.Max) || (l.o.PerIP > 0 && l.byIP[ip] >= l.o.PerIP) {
		return false
	}
	l.total++
	l.byIP[ip]++
	return true
}

func (l *Limiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func (l *Limiter) refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(l.o.Refusal)
	_ = c.Close()
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// conn gives its slot back once, on the first Close.
type conn struct {
	net.Conn
	l    *Limiter
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
