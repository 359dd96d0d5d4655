// Package errs owns the error kinds that callers branch on.
//
// Whether a failure is the caller's fault (bad input, unknown list,
// duplicate member: retrying unchanged fails the same way) or the system's
// (database down: retrying later may work) is carried by the error's type,
// found with errors.As, never by a side boolean. The CLI turns an Invalid
// into exit status 2; the SMTP side will turn it into a 5xx reply.
package errs

import (
	"errors"
	"fmt"
)

// Invalid is a permanent failure caused by the request itself. Its message
// is safe to show to the person who made the request.
type Invalid struct {
	Msg  string
	Kind error // optional sentinel for errors.Is, e.g. lists.ErrNotFound
}

func (e *Invalid) Error() string { return e.Msg }

// Unwrap exposes Kind so that errors.Is(err, lists.ErrNotFound) works.
func (e *Invalid) Unwrap() error { return e.Kind }

// Invalidf returns an *Invalid with a formatted message.
func Invalidf(format string, args ...any) error {
	return &Invalid{Msg: fmt.Sprintf(format, args...)}
}

// Kindf returns an *Invalid of the given kind with a formatted message.
func Kindf(kind error, format string, args ...any) error {
	return &Invalid{Msg: fmt.Sprintf(format, args...), Kind: kind}
}

// IsInvalid reports whether err is or wraps an *Invalid.
func IsInvalid(err error) bool {
	var inv *Invalid
	return errors.As(err, &inv)
}
