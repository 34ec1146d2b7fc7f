package identityclient

import (
	"testing"
	"time"
)

func TestRefreshDelay(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		remaining time.Duration
		lo, hi    time.Duration
		want      time.Duration
	}{
		{"24h leaf", 24 * time.Hour, 10 * time.Second, 24 * time.Hour, 16*time.Hour + 48*time.Minute},
		{"1h leaf", time.Hour, 10 * time.Second, 24 * time.Hour, 42 * time.Minute},
		{"100s left", 100 * time.Second, 10 * time.Second, 24 * time.Hour, 70 * time.Second},
		{"below the minimum", 10 * time.Second, 10 * time.Second, 24 * time.Hour, 10 * time.Second},
		{"already expired", -time.Hour, 10 * time.Second, 24 * time.Hour, 10 * time.Second},
		{"above the maximum", 30 * 24 * time.Hour, 10 * time.Second, 24 * time.Hour, 24 * time.Hour},
		{"custom maximum", 24 * time.Hour, time.Second, time.Hour, time.Hour},
		{"custom minimum", time.Hour, time.Hour, 2 * time.Hour, time.Hour},
	}
	for _, tc := range cases {
		if got := RefreshDelay(now, now.Add(tc.remaining), tc.lo, tc.hi); got != tc.want {
			t.Errorf("%s: RefreshDelay = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{0, 0, time.Second},
		{1, 0, 2 * time.Second},
		{5, 0, 32 * time.Second},
		{6, 0, time.Minute},
		{1000, 0, time.Minute}, // no overflow
		{0, 0.5, 750 * time.Millisecond},
		{6, 0.75, 37500 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := Backoff(tc.failures, time.Second, time.Minute, tc.jitter); got != tc.want {
			t.Errorf("Backoff(%d, jitter %v) = %v, want %v", tc.failures, tc.jitter, got, tc.want)
		}
	}
}
