package breaker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/breaker"
)

var errReadOnly = errors.New("shard read-only")

func isReadOnly(err error) bool { return errors.Is(err, errReadOnly) }

func readOnly(context.Context) error { return errReadOnly }

// TestLastingFaultOpensAtOnce: one failure that shows a lasting fault opens
// the breaker, where other failures are counted; successes of calls the
// fault does not touch (reads of a read-only store) in between change
// nothing.
func TestLastingFaultOpensAtOnce(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 5, Lasting: isReadOnly})
	s.calls(t, 3, succeed)
	s.calls(t, 1, fail)
	if st := s.b.State(); st != breaker.Closed {
		t.Fatalf("after one ordinary failure: %v", st)
	}
	s.calls(t, 1, readOnly)
	st := s.b.Status()
	if st.State != breaker.Open || st.Reason != "lasting fault" || !errors.Is(st.Cause, errReadOnly) || !st.Since.Equal(s.clock.Now()) {
		t.Fatalf("after one lasting fault: %+v, want open for a lasting fault since now", st)
	}
	var oe *breaker.OpenError
	if err := s.b.Do(t.Context(), succeed); !errors.As(err, &oe) || !errors.Is(err, errReadOnly) {
		t.Errorf("a call while open: %v, want an *OpenError that unwraps to its cause", err)
	}
}

// TestCheckGatesTheHalfOpenBreaker: with a Check, a half-open breaker first
// checks the dependency; Wait (the consumer's gate) stays shut and calls
// are refused until it succeeds, so a read that a read-only store still
// answers cannot close the breaker and resume receiving. A failed check
// opens it again for longer; a good one lets the next call probe.
func TestCheckGatesTheHalfOpenBreaker(t *testing.T) {
	t.Parallel()
	var stillReadOnly atomic.Bool
	stillReadOnly.Store(true)
	var checks atomic.Int32
	check := func(context.Context) error {
		checks.Add(1)
		if stillReadOnly.Load() {
			return errReadOnly
		}
		return nil
	}
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 5, Lasting: isReadOnly, Check: check,
		OpenFor: time.Second, MaxOpenFor: 10 * time.Second})
	s.calls(t, 1, readOnly)

	// Half-open, still read-only: the read is refused and never runs, and
	// the failed check reopens for twice as long.
	s.clock.Advance(time.Second)
	ran := false
	var oe *breaker.OpenError
	if err := s.b.Do(t.Context(), func(context.Context) error { ran = true; return nil }); !errors.As(err, &oe) || ran {
		t.Fatalf("a read while the check fails: %v (ran %v), want refused", err, ran)
	}
	st := s.b.Status()
	if st.State != breaker.Open || st.Reason != "check failed" || st.Until.Sub(s.clock.Now()) != 2*time.Second || checks.Load() != 1 {
		t.Fatalf("after a failed check: %+v, %d checks; want open for 2s", st, checks.Load())
	}

	// The gate runs the check too.
	s.clock.Advance(2 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.b.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || checks.Load() != 2 {
		t.Fatalf("Wait while the check fails: %v, %d checks; want it to keep waiting", err, checks.Load())
	}

	// Fault over: the gate's check passes, the next call probes and closes.
	stillReadOnly.Store(false)
	s.clock.Advance(4 * time.Second)
	if err := s.b.Wait(t.Context()); err != nil || checks.Load() != 3 {
		t.Fatalf("Wait once the check passes: %v, %d checks", err, checks.Load())
	}
	if st := s.b.State(); st != breaker.HalfOpen {
		t.Fatalf("after the check: %v, want half_open until the probe", st)
	}
	s.calls(t, 1, succeed)
	if st := s.b.Status(); st.State != breaker.Closed || st.Cause != nil || st.Reason != "" {
		t.Fatalf("after the probe: %+v, want closed and no cause", st)
	}
}

// TestPanicInTheProbeDoesNotWedgeTheBreaker: a probe call that panics
// reports nothing about the dependency; the panic goes on up, and the next
// call probes (before: probing stayed set and nothing was let through, nor
// received, again).
func TestPanicInTheProbeDoesNotWedgeTheBreaker(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second})
	s.calls(t, 1, fail)
	s.clock.Advance(time.Second)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the probe's own panic to go on", r)
			}
		}()
		_ = s.b.Do(t.Context(), func(context.Context) error { panic("boom") })
	}()
	if err := s.b.Wait(t.Context()); err != nil {
		t.Fatalf("gate after a panicking probe: %v", err)
	}
	if _, err := breaker.Call(t.Context(), s.b, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatalf("next probe: %v", err)
	}
	if st := s.b.State(); st != breaker.Closed {
		t.Errorf("%v, want closed", st)
	}
}

// TestLostProbeCountsAsFailed: a probe whose caller never reports (a bug)
// counts as failed after ProbeTimeout, and the breaker opens again, so it
// is never stuck refusing everything; a late report is ignored.
func TestLostProbeCountsAsFailed(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second, ProbeTimeout: 10 * time.Second})
	s.calls(t, 1, fail)
	s.clock.Advance(time.Second)
	lost, err := s.b.Allow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(10 * time.Second)
	st := s.b.Status()
	if st.State != breaker.Open || st.Reason != "probe did not report" || !errors.Is(st.Cause, errDown) {
		t.Fatalf("after a lost probe: %+v, want open again, keeping the cause", st)
	}
	lost(nil)
	if st := s.b.State(); st != breaker.Open {
		t.Fatalf("a late report changed the state: %v", st)
	}
	s.clock.Advance(time.Hour)
	s.calls(t, 1, succeed)
	if st := s.b.State(); st != breaker.Closed {
		t.Errorf("%v, want closed after a good probe", st)
	}
}

// TestPanicInCheckIsAFailedCheck: a Check that panics is logged with its
// stack and counts as a failed check.
func TestPanicInCheckIsAFailedCheck(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second,
		Check: func(context.Context) error { panic("check bug") }})
	s.calls(t, 1, fail)
	s.clock.Advance(time.Second)
	if err := s.b.Do(t.Context(), succeed); err == nil {
		t.Fatal("a call went through a panicking check")
	}
	if st := s.b.Status(); st.State != breaker.Open || st.Reason != "check failed" {
		t.Errorf("%+v, want open after a failed check", st)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "check panicked") || !strings.Contains(logs, "stack") {
		t.Errorf("logs %s: want the panic with its stack", logs)
	}
}

// TestPausedReportsEveryPausedPeriod: Paused hears how long each open and
// half-open period lasted.
func TestPausedReportsEveryPausedPeriod(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: 2 * time.Second,
		Paused: func(d time.Duration) { got = append(got, d) }})
	s.calls(t, 1, fail)
	s.clock.Advance(3 * time.Second) // open 2s, then half-open
	done, err := s.b.Allow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(500 * time.Millisecond)
	done(nil)
	want := []time.Duration{2 * time.Second, 1500 * time.Millisecond}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("paused periods %v, want %v", got, want)
	}
}
