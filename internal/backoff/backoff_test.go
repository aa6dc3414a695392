package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/backoff"
)

func TestStepDoublesUpToMax(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.Step(i); got != w*time.Millisecond {
			t.Errorf("Step(%d) = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := p.Step(1000); got != time.Second {
		t.Errorf("Step(1000) = %v, want the cap", got)
	}
	if got := (backoff.Policy{Base: time.Second}).Step(100); got <= 0 {
		t.Errorf("uncapped Step(100) = %v, overflowed", got)
	}
}

func TestDelayIsEqualJitter(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := p.Delay(2) // step 400ms
		if d < 200*time.Millisecond || d > 400*time.Millisecond {
			t.Fatalf("Delay(2) = %v, want within [200ms, 400ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct delays in 1000: not jittered", len(seen))
	}
	exact := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second, NoJitter: true}
	if d := exact.Delay(2); d != 400*time.Millisecond {
		t.Errorf("NoJitter Delay(2) = %v, want 400ms", d)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if !backoff.Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep with a live context reported false")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if backoff.Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context reported true")
	}
	if backoff.Sleep(ctx, 0) {
		t.Error("Sleep(0) with a cancelled context reported true")
	}
}
