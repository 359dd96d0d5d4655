package pgembed

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// flockFile is an open lock file. The kernel releases its lock when the
// process dies, however it dies, which is why the cluster's ownership is
// decided by flock rather than by pid files.
type flockFile struct {
	f *os.File
}

func openLock(path string) (*flockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &flockFile{f: f}, nil
}

// try takes the lock (unix.LOCK_EX or unix.LOCK_SH) without waiting.
func (l *flockFile) try(how int) (bool, error) {
	err := unix.Flock(int(l.f.Fd()), how|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// wait polls for the lock until ctx ends. Polling, rather than a blocking
// flock, keeps the wait cancellable.
func (l *flockFile) wait(ctx context.Context, how int) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := l.try(how)
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (l *flockFile) unlock() { _ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN) }

func (l *flockFile) close() {
	if l != nil && l.f != nil {
		l.f.Close() // also drops the lock
		l.f = nil
	}
}
