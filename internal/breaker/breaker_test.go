package breaker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/breaker"
	"github.com/chatprep/chatprep/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	added   chan struct{} // one token per After call
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), added: make(chan struct{}, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	}
	c.added <- struct{}{}
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// awaitTimer blocks until someone has called After.
func (c *fakeClock) awaitTimer(t *testing.T) {
	t.Helper()
	select {
	case <-c.added:
	case <-t.Context().Done():
		t.Fatal("nobody asked for a timer")
	}
}

var errDown = errors.New("weaviate: connection refused")

type setup struct {
	b     *breaker.Breaker
	clock *fakeClock
	logs  *syncBuffer
}

func newBreaker(t *testing.T, cfg breaker.Config) setup {
	t.Helper()
	s := setup{clock: newClock(), logs: &syncBuffer{}}
	cfg.Clock = s.clock
	cfg.Logger = zerolog.New(s.logs)
	b, err := breaker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.b = b
	return s
}

func fail(ctx context.Context) error    { return fmt.Errorf("query: %w", errDown) }
func succeed(ctx context.Context) error { return nil }

func (s setup) calls(t *testing.T, n int, fn func(context.Context) error) {
	t.Helper()
	for range n {
		_ = s.b.Do(t.Context(), fn)
	}
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 5, OpenFor: 3 * time.Second})
	s.calls(t, 4, fail)
	s.calls(t, 1, succeed) // resets the count
	s.calls(t, 4, fail)
	if st := s.b.State(); st != breaker.Closed {
		t.Fatalf("after 4 failures in a row: %v, want closed", st)
	}
	s.calls(t, 1, fail)
	if st := s.b.State(); st != breaker.Open {
		t.Fatalf("after 5 failures in a row: %v, want open", st)
	}
	called := false
	err := s.b.Do(t.Context(), func(context.Context) error { called = true; return nil })
	var oe *breaker.OpenError
	if !errors.As(err, &oe) || called {
		t.Fatalf("open breaker: err %v, called %v; want a fast *OpenError", err, called)
	}
	if want := s.clock.Now().Add(3 * time.Second); !oe.Until.Equal(want) || !errors.Is(oe.Cause, errDown) || oe.State != breaker.Open {
		t.Errorf("OpenError %+v: want Until %v and the last failure as Cause", oe, want)
	}
	if oe.Error() != "weaviate circuit breaker open" {
		t.Errorf("text %q", oe.Error())
	}
}

func TestOpensOnFailureRatioWithinTheWindow(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 100, FailureRatio: 0.5, MinCalls: 10, Window: 10 * time.Second})
	// Failures older than the window do not count.
	s.calls(t, 4, fail)
	s.clock.Advance(11 * time.Second)
	for range 4 {
		s.calls(t, 1, succeed)
		s.calls(t, 1, fail)
	}
	if st := s.b.State(); st != breaker.Closed {
		t.Fatalf("4 of 8 calls failed (below MinCalls): %v", st)
	}
	s.calls(t, 1, succeed)
	s.calls(t, 1, fail) // 5 of 10
	if st := s.b.State(); st != breaker.Open {
		t.Fatalf("5 of 10 calls failed: %v, want open", st)
	}
}

func TestHalfOpenProbeClosesTheBreaker(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second})
	s.calls(t, 1, fail)
	s.clock.Advance(time.Second)
	if st := s.b.State(); st != breaker.HalfOpen {
		t.Fatalf("after the open period: %v, want half_open", st)
	}
	done, err := s.b.Allow(t.Context())
	if err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	var oe *breaker.OpenError
	if _, err := s.b.Allow(t.Context()); !errors.As(err, &oe) || oe.State != breaker.HalfOpen {
		t.Fatalf("second call during the probe: %v, want a half-open *OpenError", err)
	}
	done(nil)
	if st := s.b.State(); st != breaker.Closed {
		t.Fatalf("after a good probe: %v, want closed", st)
	}
	if err := s.b.Do(t.Context(), succeed); err != nil {
		t.Fatal(err)
	}
}

func TestFailedProbeReopensForLonger(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second, MaxOpenFor: 3 * time.Second})
	s.calls(t, 1, fail)
	for _, want := range []time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second} {
		s.clock.Advance(time.Hour)
		if err := s.b.Do(t.Context(), fail); !errors.Is(err, errDown) {
			t.Fatalf("probe: %v", err)
		}
		var oe *breaker.OpenError
		if err := s.b.Do(t.Context(), succeed); !errors.As(err, &oe) {
			t.Fatalf("after a failed probe: %v, want open", err)
		}
		if got := oe.Until.Sub(s.clock.Now()); got != want {
			t.Errorf("open for %v, want %v", got, want)
		}
	}
	// A good probe closes it and resets the open period.
	s.clock.Advance(time.Hour)
	if err := s.b.Do(t.Context(), succeed); err != nil {
		t.Fatal(err)
	}
	s.calls(t, 1, fail)
	var oe *breaker.OpenError
	if err := s.b.Do(t.Context(), succeed); !errors.As(err, &oe) || oe.Until.Sub(s.clock.Now()) != time.Second {
		t.Errorf("reopened: %v; want OpenFor again", err)
	}
}

// TestCallerCancellationIsNotAFailure: a call cancelled by its caller (a
// muted chat cancelling its history queries) says nothing about Weaviate;
// a timeout does.
func TestCallerCancellationIsNotAFailure(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 3})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for range 10 {
		_ = s.b.Do(cancelled, func(ctx context.Context) error { return fmt.Errorf("query: %w", ctx.Err()) })
	}
	if st := s.b.State(); st != breaker.Closed {
		t.Fatalf("after cancelled calls: %v, want closed", st)
	}
	timedOut, cancelT := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancelT()
	for range 3 {
		_ = s.b.Do(timedOut, func(ctx context.Context) error { return fmt.Errorf("query: %w", ctx.Err()) })
	}
	if st := s.b.State(); st != breaker.Open {
		t.Fatalf("after 3 timeouts: %v, want open", st)
	}
}

func TestCancelledProbeLetsTheNextCallProbe(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second})
	s.calls(t, 1, fail)
	s.clock.Advance(time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	done, err := s.b.Allow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done(context.Canceled)
	if st := s.b.State(); st != breaker.HalfOpen {
		t.Fatalf("after a cancelled probe: %v, want half_open", st)
	}
	if err := s.b.Do(t.Context(), succeed); err != nil {
		t.Fatalf("next probe: %v", err)
	}
	if st := s.b.State(); st != breaker.Closed {
		t.Errorf("%v, want closed", st)
	}
}

func TestIsFailureCanExcludeErrors(t *testing.T) {
	t.Parallel()
	errNotFound := errors.New("not found")
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, IsFailure: func(err error) bool { return !errors.Is(err, errNotFound) }})
	s.calls(t, 1, fail)
	s.calls(t, 1, func(context.Context) error { return errNotFound }) // the dependency answered
	s.calls(t, 1, fail)
	if st := s.b.State(); st != breaker.Closed {
		t.Fatalf("%v: an answered call should reset the run of failures", st)
	}
}

// TestOutcomesOfCallsFromBeforeAStateChangeAreIgnored: a slow call that
// started while closed cannot close an open breaker.
func TestOutcomesOfCallsFromBeforeAStateChangeAreIgnored(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 2})
	slow, err := s.b.Allow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 2, fail)
	slow(nil)
	if st := s.b.State(); st != breaker.Open {
		t.Errorf("%v, want still open", st)
	}
}

// TestWaitPausesWhileOpen: the consumer's gate blocks while the breaker is
// open, lets one receive through when it is half-open, blocks while the
// probe is in flight, and stays open once the breaker closes.
func TestWaitPausesWhileOpen(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: 5 * time.Second})
	if err := s.b.Wait(t.Context()); err != nil {
		t.Fatalf("closed: %v", err)
	}
	s.calls(t, 1, fail)

	waited := make(chan error, 1)
	go func() { waited <- s.b.Wait(t.Context()) }()
	s.clock.awaitTimer(t) // Wait is blocked on the open period
	s.clock.Advance(4 * time.Second)
	select {
	case err := <-waited:
		t.Fatalf("Wait returned %v before the open period ended", err)
	default:
	}
	s.clock.Advance(time.Second)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}

	probe, err := s.b.Allow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	go func() { waited <- s.b.Wait(t.Context()) }()
	probe(nil) // Wait (blocked on the probe, or arriving after it) returns
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if st := s.b.State(); st != breaker.Closed {
		t.Errorf("%v", st)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 1})
	s.calls(t, 1, fail)
	ctx, cancel := context.WithCancel(t.Context())
	waited := make(chan error, 1)
	go func() { waited <- s.b.Wait(ctx) }()
	s.clock.awaitTimer(t)
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}

// TestStateChangesAreLoggedOnce: many failing and refused calls give one
// "open" line; each later change one line each.
func TestStateChangesAreLoggedOnce(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 3, OpenFor: time.Second})
	s.calls(t, 20, fail)
	s.clock.Advance(time.Second)
	for range 5 {
		s.b.State()
	}
	s.calls(t, 1, succeed)
	s.calls(t, 5, succeed)

	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3 (open, half-open, closed):\n%s", len(lines), s.logs.Bytes())
	}
	open := lines[0]
	if open["level"] != "warn" || open["breaker"] != "weaviate" ||
		open["reason"] != "3 consecutive failures" || open["error"] != "query: weaviate: connection refused" || open["open_for_ms"] != 1000.0 {
		t.Errorf("open line: %v", open)
	}
	for i, want := range []string{"half-open", "closed"} {
		if msg, _ := lines[i+1]["message"].(string); !bytes.Contains([]byte(msg), []byte(want)) || lines[i+1]["level"] != "info" {
			t.Errorf("line %d: %v, want an info line saying %q", i+1, lines[i+1], want)
		}
	}
}

// TestConcurrentUse exercises the breaker from many goroutines (for -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{ConsecutiveFailures: 3, OpenFor: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fn := succeed
				if (g+i)%3 == 0 {
					fn = fail
				}
				_ = s.b.Do(t.Context(), fn)
				if i%50 == 0 {
					s.clock.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

func TestCallReturnsTheValue(t *testing.T) {
	t.Parallel()
	s := newBreaker(t, breaker.Config{})
	v, err := breaker.Call(t.Context(), s.b, func(context.Context) (int, error) { return 42, nil })
	if v != 42 || err != nil {
		t.Errorf("Call = %d, %v", v, err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c := breaker.Config{}.WithDefaults()
	if c.Name != breaker.DefaultName || c.ConsecutiveFailures != breaker.DefaultConsecutiveFailures || c.OpenFor != breaker.DefaultOpenFor ||
		c.MaxOpenFor != breaker.DefaultMaxOpenFor || c.Window != breaker.DefaultWindow || c.MinCalls != breaker.DefaultMinCalls ||
		c.FailureRatio != breaker.DefaultFailureRatio || c.Clock == nil {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []breaker.Config{
		{ConsecutiveFailures: -1}, {FailureRatio: 1.5}, {MinCalls: -1}, {Window: 5}, {OpenFor: -time.Second},
		{OpenFor: time.Minute, MaxOpenFor: time.Second},
	} {
		if _, err := breaker.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	if got := breaker.HalfOpen.String(); got != "half_open" {
		t.Errorf("HalfOpen = %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
