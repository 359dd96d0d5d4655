// Package dnstest is a DNS server on loopback for tests: it answers the TXT
// records it is given (DMARC policies, DKIM keys), says NXDOMAIN for every
// other name, and never answers the names it is told to drop, so a test can
// see what parley does when DNS times out.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	Addr string // host:port, for both UDP and TCP

	mu   sync.Mutex
	txt  map[string][]string // lower-case name without the final dot
	drop map[string]bool
	asks map[string]int
}

// Start serves on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{txt: map[string][]string{}, drop: map[string]bool{}, asks: map[string]int{}}
	// One port for UDP and TCP: the UDP port the system picks may be
	// taken for TCP, so pick again until both are had.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 50 {
			t.Fatalf("no loopback port free for both UDP and TCP: %v", err)
		}
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return s
}

func key(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// TXT sets the TXT records of name.
func (s *Server) TXT(name string, records ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[key(name)] = records
}

// Drop makes the server never answer queries for name.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[key(name)] = true
}

// Asked returns how many queries for name arrived.
func (s *Server) Asked(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asks[key(name)]
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	name := key(q.Name)
	s.mu.Lock()
	s.asks[name]++
	drop, txts, found := s.drop[name], s.txt[name], s.txt[name] != nil
	s.mu.Unlock()
	if drop {
		return // the client times out
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch {
	case !found:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT:
		for _, txt := range txts {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: split255(txt)})
		}
	}
	w.WriteMsg(m)
}

// split255 cuts a record into the 255-byte strings a TXT record holds (a
// DKIM key is longer than one); readers join them again.
func split255(r string) []string {
	var out []string
	for len(r) > 255 {
		out = append(out, r[:255])
		r = r[255:]
	}
	return append(out, r)
}
