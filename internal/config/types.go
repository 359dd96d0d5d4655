package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HostPort is a "host:port" listening address; port 0 means "pick one".
type HostPort string

// UnmarshalText validates the address as it is decoded.
func (h *HostPort) UnmarshalText(b []byte) error {
	host, port, err := net.SplitHostPort(string(b))
	if err != nil {
		return fmt.Errorf("%q is not host:port", b)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q has a bad host", b)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has a bad port", b)
	}
	*h = HostPort(b)
	return nil
}

// MarshalText writes the address as given.
func (h HostPort) MarshalText() ([]byte, error) { return []byte(h), nil }

// Duration is a time.Duration written like "30s" or "4h".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 30s, 5m, 4h)", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go's notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Relay says where outbound mail goes.
type Relay string

// RelayKind is the mode of a Relay.
type RelayKind int

// Relay modes.
const (
	RelaySMTP RelayKind = iota + 1
	RelayMX
	RelayFile
)

// UnmarshalText validates the relay as it is decoded.
func (r *Relay) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = ""
		return nil
	}
	if _, _, err := Relay(b).Parse(); err != nil {
		return err
	}
	*r = Relay(b)
	return nil
}

// MarshalText writes the relay as given.
func (r Relay) MarshalText() ([]byte, error) { return []byte(r), nil }

// Parse returns the relay's mode and its target: host:port for smtp, the
// directory for file, empty for mx.
func (r Relay) Parse() (RelayKind, string, error) {
	if r == "mx" {
		return RelayMX, "", nil
	}
	u, err := url.Parse(string(r))
	if err != nil {
		return 0, "", fmt.Errorf("relay is not smtp://host:port, mx or file:///dir")
	}
	r = Relay(u.Redacted()) // error messages never show a password
	switch u.Scheme {
	case "smtp":
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return 0, "", fmt.Errorf("%q: smtp relay takes only host:port", string(r))
		}
		var hp HostPort
		if err := hp.UnmarshalText([]byte(u.Host)); err != nil || u.Port() == "0" || u.Hostname() == "" {
			return 0, "", fmt.Errorf("%q: smtp relay needs host:port", string(r))
		}
		return RelaySMTP, u.Host, nil
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return 0, "", fmt.Errorf("%q: file relay needs an absolute path, file:///dir", string(r))
		}
		return RelayFile, u.Path, nil
	}
	return 0, "", fmt.Errorf("%q is not smtp://host:port, mx or file:///dir", string(r))
}

// Credentials returns the user and password of an smtp://user:pass@host
// relay, for AUTH PLAIN; empty when there are none.
func (r Relay) Credentials() (user, pass string) {
	u, err := url.Parse(string(r))
	if err != nil || u.User == nil {
		return "", ""
	}
	pass, _ = u.User.Password()
	return u.User.Username(), pass
}

// LogFormat is "text" or "json".
type LogFormat string

// UnmarshalText accepts text or json.
func (f *LogFormat) UnmarshalText(b []byte) error {
	switch s := strings.ToLower(string(b)); s {
	case "text", "json":
		*f = LogFormat(s)
		return nil
	}
	return fmt.Errorf("%q is not text or json", b)
}

// LogLevel is a slog level name.
type LogLevel string

// UnmarshalText accepts debug, info, warn or error.
func (l *LogLevel) UnmarshalText(b []byte) error {
	var lv slog.Level
	if err := lv.UnmarshalText(b); err != nil {
		return fmt.Errorf("%q is not debug, info, warn or error", b)
	}
	*l = LogLevel(strings.ToLower(string(b)))
	return nil
}

// Level returns the slog level (info when unset).
func (l LogLevel) Level() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l)); err != nil {
		return slog.LevelInfo
	}
	return lv
}
