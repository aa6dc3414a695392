package main

import (
	"testing"
	"time"
)

// TestWaitFlag: `worker results --wait` takes a bare number of seconds as
// well as a duration, and refuses what is neither and what is negative.
func TestWaitFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{"5", 5 * time.Second, true},
		{"2.5", 2500 * time.Millisecond, true},
		{"0", 0, true},
		{"5s", 5 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"-1", 0, false},
		{"-1s", 0, false},
		{"five", 0, false},
		{"1e300", 0, false},
		{"", 0, false},
	} {
		var w waitFlag
		err := w.Set(tc.in)
		if (err == nil) != tc.ok || tc.ok && time.Duration(w) != tc.want {
			t.Errorf("--wait %q: %v, %v; want %v (ok %v)", tc.in, time.Duration(w), err, tc.want, tc.ok)
		}
	}
}
