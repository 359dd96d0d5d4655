package smtpin

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// limitListener caps simultaneous connections in total and per client IP
// (go-smtp caps neither). A connection over a cap is told so with 421 and
// closed at once, so one busy or hostile client cannot take every slot.
type limitListener struct {
	net.Listener
	max, perIP int
	log        *slog.Logger

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

func newLimitListener(ln net.Listener, max, perIP int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, max: max, perIP: perIP, log: log, byIP: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if l.admit(ip) {
			return &limitConn{Conn: c, l: l, ip: ip}, nil
		}
		l.log.Warn("connection refused: too many connections", "event", "conn_limit", "remote", c.RemoteAddr().String())
		go refuse(c)
	}
}

func (l *limitListener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.max > 0 && l.total >= l.max) || (l.perIP > 0 && l.byIP[ip] >= l.perIP) {
		return false
	}
	l.total++
	l.byIP[ip]++
	return true
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("421 4.7.0 too many connections, try again later\r\n"))
	_ = c.Close()
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
