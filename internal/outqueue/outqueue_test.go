package outqueue

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := DefaultBackoff
	tests := []struct {
		attempts int
		r        float64
		want     time.Duration
	}{
		{1, 0.5, 5 * time.Minute},
		{2, 0.5, 10 * time.Minute},
		{3, 0.5, 20 * time.Minute},
		{6, 0.5, 160 * time.Minute},
		{7, 0.5, 4 * time.Hour},
		{50, 0.5, 4 * time.Hour},
		{1, 0, 4*time.Minute + 30*time.Second},
		{1, 1, 5*time.Minute + 30*time.Second},
		{0, 0.5, 5 * time.Minute},
	}
	for _, tc := range tests {
		if got := b.Delay(tc.attempts, tc.r); got != tc.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tc.attempts, tc.r, got, tc.want)
		}
	}
}
