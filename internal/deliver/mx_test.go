package deliver_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/deliver"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// fakeDNS answers MX queries from a table; a missing name is NXDOMAIN.
type fakeDNS map[string][]*net.MX

func (f fakeDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if mx, ok := f[name]; ok {
		if mx == nil {
			return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
		}
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func TestMXRelay(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	_, port, _ := net.SplitHostPort(sink.Addr)
	p, _ := strconv.Atoi(port)
	dns := fakeDNS{
		"mx.example":    {{Host: "nowhere.invalid.", Pref: 5}, {Host: "127.0.0.1.", Pref: 10}},
		"null.example":  {{Host: ".", Pref: 0}},
		"flaky.example": nil,
	}
	r := &deliver.MXRelay{Resolver: dns, Hostname: "parley.test", Port: p, Timeout: 5 * time.Second}
	defer r.Close()
	ctx := t.Context()
	if err := r.Send(ctx, "b@l", "a@mx.example", []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Errorf("second MX after an unreachable first: %v", err)
	}
	if err := r.Send(ctx, "b@l", "a@localhost", []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Errorf("implicit MX: %v", err)
	}
	var perm *deliver.Permanent
	if err := r.Send(ctx, "b@l", "a@null.example", nil); !errors.As(err, &perm) || perm.Code != 556 {
		t.Errorf("null MX: %v, want a permanent 556", err)
	}
	if err := r.Send(ctx, "b@l", "a@flaky.example", nil); err == nil || errors.As(err, &perm) {
		t.Errorf("DNS failure: %v, want a temporary error", err)
	}
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("sink got %d messages, want 2", n)
	}
}
