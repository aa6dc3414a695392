package breaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/backoff"
)

// Defaults of Config.
const (
	// DefaultName names the breaker in errors and logs.
	DefaultName = "weaviate"
	// DefaultConsecutiveFailures failures in a row open the breaker.
	DefaultConsecutiveFailures = 5
	// DefaultFailureRatio of failed calls in the window opens the breaker…
	DefaultFailureRatio = 0.5
	// …once the window holds at least DefaultMinCalls calls.
	DefaultMinCalls = 20
	// DefaultWindow is how far back the failure ratio looks.
	DefaultWindow = 10 * time.Second
	// DefaultOpenFor is how long the breaker stays open the first time.
	DefaultOpenFor = 2 * time.Second
	// DefaultMaxOpenFor caps the open period, which doubles with each failed
	// probe.
	DefaultMaxOpenFor = 30 * time.Second
	// DefaultProbeTimeout bounds a half-open breaker's Check, and how long
	// its probe call may take to report: a probe that has not reported by
	// then counts as failed, so a caller that never reports (a panic, a
	// bug) cannot leave the breaker refusing everything for good.
	DefaultProbeTimeout = 30 * time.Second
)

// windowBuckets is how many slices the ratio window is counted in.
const windowBuckets = 10

// Clock tells the time. The real clock is used when Config.Clock is nil.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Breaker. Zero fields take the defaults.
type Config struct {
	// Name names the breaker in errors and logs. Default DefaultName.
	Name string
	// ConsecutiveFailures in a row open the breaker. Default
	// DefaultConsecutiveFailures.
	ConsecutiveFailures int
	// FailureRatio of failed calls within Window opens the breaker, once
	// the window holds MinCalls calls. Default DefaultFailureRatio.
	FailureRatio float64
	// MinCalls in Window before FailureRatio applies. Default DefaultMinCalls.
	MinCalls int
	// Window is how far back FailureRatio looks. Default DefaultWindow.
	Window time.Duration
	// OpenFor is how long the breaker first stays open. Default
	// DefaultOpenFor.
	OpenFor time.Duration
	// MaxOpenFor caps the open period, which doubles after each failed
	// probe. Default DefaultMaxOpenFor.
	MaxOpenFor time.Duration
	// IsFailure, when set, decides whether an error (other than a caller's
	// cancellation) counts as a failure; an error it rejects shows that the
	// dependency answered and counts as a success. Default: every error is a
	// failure.
	IsFailure func(err error) bool
	// Lasting, when set, picks the failures that show a lasting fault of
	// the dependency (a refused credential, a read-only store): one of them
	// opens the breaker at once, where other failures are counted. It is
	// asked only about errors IsFailure counts. Default: none.
	Lasting func(err error) bool
	// Check, when set, is a cheap call that tells whether the dependency
	// can serve at all. A half-open breaker runs it first, once, in
	// whichever Wait or Allow comes first: until it succeeds Wait keeps
	// blocking and calls are refused, and when it fails the breaker opens
	// again for longer, as after a failed probe. So a fault that some calls
	// do not meet (a read-only store answers reads) does not let the next
	// such call close the breaker and resume receiving. When it succeeds,
	// the next call is the probe as without a Check. Default: none.
	Check func(ctx context.Context) error
	// ProbeTimeout bounds Check, and how long a probe call may take to
	// report its outcome before it counts as failed. Default
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Paused, when set, is told each time the breaker leaves the open or
	// the half-open state, how long it was in it: the time calls (and the
	// consumer's receiving) were held back. It is called with the breaker's
	// lock held: it must return quickly and not call the breaker.
	Paused func(d time.Duration)
	// Clock tells the time. Default: the real clock.
	Clock Clock
	// Logger receives one line per state change. The zero Logger discards.
	Logger zerolog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Name = cmp.Or(c.Name, DefaultName)
	c.ConsecutiveFailures = cmp.Or(c.ConsecutiveFailures, DefaultConsecutiveFailures)
	c.FailureRatio = cmp.Or(c.FailureRatio, DefaultFailureRatio)
	c.MinCalls = cmp.Or(c.MinCalls, DefaultMinCalls)
	c.Window = cmp.Or(c.Window, DefaultWindow)
	c.OpenFor = cmp.Or(c.OpenFor, DefaultOpenFor)
	c.MaxOpenFor = cmp.Or(c.MaxOpenFor, max(DefaultMaxOpenFor, c.OpenFor))
	c.ProbeTimeout = cmp.Or(c.ProbeTimeout, DefaultProbeTimeout)
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.ConsecutiveFailures < 1 {
		errs = append(errs, fmt.Errorf("consecutive failures %d: must be at least 1", c.ConsecutiveFailures))
	}
	if !(c.FailureRatio > 0 && c.FailureRatio <= 1) {
		errs = append(errs, fmt.Errorf("failure ratio %v: must be above 0 and at most 1", c.FailureRatio))
	}
	if c.MinCalls < 1 {
		errs = append(errs, fmt.Errorf("min calls %d: must be at least 1", c.MinCalls))
	}
	if c.Window < windowBuckets {
		errs = append(errs, fmt.Errorf("window %v: must be at least %dns", c.Window, windowBuckets))
	}
	if c.OpenFor <= 0 {
		errs = append(errs, fmt.Errorf("open for %v: must be positive", c.OpenFor))
	}
	if c.MaxOpenFor < c.OpenFor {
		errs = append(errs, fmt.Errorf("max open for %v: must be at least open for (%v)", c.MaxOpenFor, c.OpenFor))
	}
	if c.ProbeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("probe timeout %v: must be positive", c.ProbeTimeout))
	}
	return errors.Join(errs...)
}

// State is the breaker's state.
type State int

// The states.
const (
	Closed   State = iota // calls go through
	Open                  // calls fail fast; Wait blocks
	HalfOpen              // Check runs (if set), then one probe call goes through
)

// String is "closed", "open" or "half_open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// OpenError is the error of a call refused because the breaker is open, or
// half-open with its probe in flight.
type OpenError struct {
	Name  string
	State State     // Open or HalfOpen
	Until time.Time // when the open period ends; zero when half-open
	Cause error     // the failure that opened the breaker
}

// Error reads like "weaviate circuit breaker open".
func (e *OpenError) Error() string {
	return e.Name + " circuit breaker " + e.State.String()
}

// Transient is true: the call was refused for the dependency's state, not
// for anything about the request.
func (e *OpenError) Transient() bool { return true }

// Unwrap returns the failure that opened the breaker, so callers can
// classify it (errors.As) as they would the failure itself.
func (e *OpenError) Unwrap() error { return e.Cause }

// Status is what the breaker is doing and why, for health endpoints and
// logs.
type Status struct {
	State State
	// Cause is the failure that opened the breaker last, nil while closed.
	Cause error
	// Reason says why it opened: "5 consecutive failures", "lasting
	// fault", "check failed", "probe failed", "probe did not report".
	// Empty while closed.
	Reason string
	// Since is when the breaker last left the closed state; zero while
	// closed.
	Since time.Time
	// Until is when an open breaker turns half-open; zero otherwise.
	Until time.Time
}

// errPanicked is the outcome Do and Call report for a call that panicked:
// it says nothing about the dependency, so it is ignored like a caller's
// cancellation (and the panic goes on up the stack).
var errPanicked = errors.New("call panicked")

// errProbeLost is the cause of reopening after a probe that did not report
// within ProbeTimeout.
var errProbeLost = errors.New("the probe call did not report its outcome in time")

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	cfg Config
	log zerolog.Logger

	mu           sync.Mutex
	state        State
	generation   uint64 // increases with every state change; outcomes of older calls are ignored
	consecutive  int
	buckets      [windowBuckets]bucket
	failedProbes int // since the breaker last closed: each doubles the open period
	openUntil    time.Time
	checked      bool      // half-open: Check succeeded (or there is none)
	checking     bool      // half-open: Check is running
	probing      bool      // half-open: the probe call is in flight
	probeBy      time.Time // checking or probing: when it counts as failed
	cause        error
	reason       string
	since        time.Time     // when the breaker last left closed
	entered      time.Time     // when the current state began
	changed      chan struct{} // closed and replaced when state, checking or probing changes
}

type bucket struct {
	slot            int64 // which slice of time it counts
	calls, failures int
}

// New returns a closed breaker.
func New(cfg Config) (*Breaker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid circuit breaker configuration: %w", err)
	}
	return &Breaker{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("breaker", cfg.Name).Logger(),
		changed: make(chan struct{}),
	}, nil
}

// State returns the current state.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.cfg.Clock.Now())
	return b.state
}

// Status returns the current state and why the breaker is in it.
func (b *Breaker) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.cfg.Clock.Now())
	if b.state == Closed {
		return Status{State: Closed}
	}
	st := Status{State: b.state, Cause: b.cause, Reason: b.reason, Since: b.since}
	if b.state == Open {
		st.Until = b.openUntil
	}
	return st
}

// Allow asks to make one call. If the breaker lets it through, the caller
// makes the call with ctx and reports its error (nil for success) to done,
// exactly once. Otherwise Allow returns an *OpenError. A half-open breaker
// with a Check that has not run yet runs it first, in this call.
func (b *Breaker) Allow(ctx context.Context) (done func(err error), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		b.advance(b.cfg.Clock.Now())
		if b.state != HalfOpen || b.checked || b.checking {
			break
		}
		b.runCheck(ctx) // unlocks while Check runs
		if ctx.Err() != nil {
			return nil, &OpenError{Name: b.cfg.Name, State: b.state, Until: b.openUntil, Cause: b.cause}
		}
	}
	switch {
	case b.state == Open:
		return nil, &OpenError{Name: b.cfg.Name, State: Open, Until: b.openUntil, Cause: b.cause}
	case b.state == HalfOpen && (b.probing || !b.checked):
		return nil, &OpenError{Name: b.cfg.Name, State: HalfOpen, Cause: b.cause}
	}
	probe := b.state == HalfOpen
	if probe {
		b.probing = true
		b.probeBy = b.cfg.Clock.Now().Add(b.cfg.ProbeTimeout)
		b.notify()
	}
	gen := b.generation
	var once sync.Once
	return func(err error) { once.Do(func() { b.record(ctx, gen, probe, err) }) }, nil
}

// Do runs fn through the breaker. A panic in fn is reported as an outcome
// that says nothing about the dependency (the breaker is never left waiting
// for it), and goes on up the stack.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	done, err := b.Allow(ctx)
	if err != nil {
		return err
	}
	defer reportPanic(done)
	err = fn(ctx)
	done(err)
	return err
}

// Call runs fn through b and returns its value; a panic in fn is handled as
// by Do.
func Call[T any](ctx context.Context, b *Breaker, fn func(ctx context.Context) (T, error)) (T, error) {
	done, err := b.Allow(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer reportPanic(done)
	v, err := fn(ctx)
	done(err)
	return v, err
}

// reportPanic reports a call that panics to its done, then panics on.
func reportPanic(done func(error)) {
	if r := recover(); r != nil {
		done(errPanicked)
		panic(r)
	}
}

// Wait blocks while the breaker refuses calls (open; half-open with its
// Check or its probe in flight) and returns nil once a call may go
// through, or ctx's error. It is the consumer's pause gate. A half-open
// breaker with a Check that has not run yet runs it first, in this call.
func (b *Breaker) Wait(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		now := b.cfg.Clock.Now()
		b.advance(now)
		switch {
		case b.state == Closed || (b.state == HalfOpen && b.checked && !b.probing):
			return nil
		case b.state == HalfOpen && !b.checked && !b.checking:
			b.runCheck(ctx) // unlocks while Check runs
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		changed := b.changed
		var timer <-chan time.Time
		switch {
		case b.state == Open:
			timer = b.cfg.Clock.After(b.openUntil.Sub(now))
		case b.checking || b.probing:
			timer = b.cfg.Clock.After(b.probeBy.Sub(now))
		}
		b.mu.Unlock()
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-changed:
		case <-timer:
		}
		b.mu.Lock()
		if err != nil {
			return err
		}
	}
}

// runCheck runs Check for a half-open breaker, with b.mu held on entry and
// on return (unlocked while Check runs), and applies its outcome: checked
// on success, open again on failure. A caller's cancellation, or a state
// change meanwhile, leaves the outcome unused. A panic in Check is a failed
// check, logged with its stack.
func (b *Breaker) runCheck(ctx context.Context) {
	gen := b.generation
	b.checking = true
	b.probeBy = b.cfg.Clock.Now().Add(b.cfg.ProbeTimeout)
	b.notify()
	b.mu.Unlock()

	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("check panicked: %v", r)
				b.log.Error().Str("stack", string(debug.Stack())).Err(err).Msg("circuit breaker check panicked")
			}
		}()
		cctx, cancel := context.WithTimeout(ctx, b.cfg.ProbeTimeout)
		defer cancel()
		return b.cfg.Check(cctx)
	}()

	b.mu.Lock()
	now := b.cfg.Clock.Now()
	b.advance(now)
	if gen != b.generation {
		return // timed out meanwhile (probeBy), or another change
	}
	b.checking = false
	b.notify()
	switch {
	case err == nil:
		b.checked = true
		b.log.Info().Msg("circuit breaker check succeeded: the next call probes")
	case ctx.Err() != nil:
		// The caller gave up: says nothing; the next Wait or Allow checks.
	default:
		b.failedProbes++
		b.open(now, err, "check failed")
	}
}

// classify tells whether a call's outcome counts as a failure, a success,
// or neither (ignore).
func (b *Breaker) classify(ctx context.Context, err error) (failure, ignore bool) {
	switch {
	case err == nil:
		return false, false
	case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, errPanicked):
		return false, true // the caller cancelled, or panicked: says nothing about the dependency
	case b.cfg.IsFailure != nil && !b.cfg.IsFailure(err):
		return false, false
	}
	return true, false
}

func (b *Breaker) record(ctx context.Context, gen uint64, probe bool, err error) {
	failure, ignore := b.classify(ctx, err)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Clock.Now()
	b.advance(now)
	if gen != b.generation {
		return // the call started before the last state change
	}
	if probe {
		b.probing = false
		b.notify()
	}
	if ignore {
		return
	}
	switch b.state {
	case Closed:
		bk := b.bucket(now)
		bk.calls++
		if !failure {
			b.consecutive = 0
			return
		}
		bk.failures++
		b.consecutive++
		calls, failures := b.window(now)
		switch {
		case b.cfg.Lasting != nil && b.cfg.Lasting(err):
			b.open(now, err, "lasting fault")
		case b.consecutive >= b.cfg.ConsecutiveFailures:
			b.open(now, err, fmt.Sprintf("%d consecutive failures", b.consecutive))
		case calls >= b.cfg.MinCalls && float64(failures) >= b.cfg.FailureRatio*float64(calls):
			b.open(now, err, fmt.Sprintf("%d of %d calls failed in %v", failures, calls, b.cfg.Window))
		}
	case HalfOpen:
		if failure {
			b.failedProbes++
			b.open(now, err, "probe failed")
			return
		}
		b.set(Closed, now)
		b.failedProbes = 0
		b.consecutive = 0
		b.buckets = [windowBuckets]bucket{}
		b.cause = nil
		b.reason = ""
		b.log.Info().Msg("circuit breaker closed: probe succeeded")
	}
}

// advance moves an open breaker whose time is up to half-open, and a
// half-open one whose Check or probe did not report by probeBy to open.
func (b *Breaker) advance(now time.Time) {
	switch {
	case b.state == Open && !now.Before(b.openUntil):
		b.set(HalfOpen, b.openUntil) // it was half-open from then, whenever someone looks
		b.checked = b.cfg.Check == nil
		if b.checked {
			b.log.Info().Msg("circuit breaker half-open: the next call probes")
		} else {
			b.log.Info().Msg("circuit breaker half-open: checking the dependency")
		}
	case b.state == HalfOpen && (b.checking || b.probing) && !now.Before(b.probeBy):
		b.failedProbes++
		b.open(now, errProbeLost, "probe did not report")
	}
}

func (b *Breaker) open(now time.Time, cause error, reason string) {
	if b.state == Closed {
		b.since = now
	}
	b.set(Open, now)
	openFor := backoff.Policy{Base: b.cfg.OpenFor, Max: b.cfg.MaxOpenFor, NoJitter: true}.Step(b.failedProbes)
	b.openUntil = now.Add(openFor)
	if cause != errProbeLost || b.cause == nil {
		b.cause = cause // a lost probe keeps the cause it was probing
	}
	b.reason = reason
	b.log.Warn().Err(cause).Str("reason", reason).Float64("open_for_ms", float64(openFor.Milliseconds())).
		Msg("circuit breaker open: calls fail fast and receiving pauses")
}

func (b *Breaker) set(s State, now time.Time) {
	if b.state != Closed && b.cfg.Paused != nil {
		b.cfg.Paused(now.Sub(b.entered))
	}
	b.state = s
	b.entered = now
	b.generation++
	b.probing = false
	b.checking = false
	b.checked = false
	b.notify()
}

// notify wakes every Wait.
func (b *Breaker) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Breaker) slot(now time.Time) int64 {
	return now.UnixNano() / int64(b.cfg.Window/windowBuckets)
}

func (b *Breaker) bucket(now time.Time) *bucket {
	s := b.slot(now)
	bk := &b.buckets[(s%windowBuckets+windowBuckets)%windowBuckets]
	if bk.slot != s {
		*bk = bucket{slot: s}
	}
	return bk
}

// window sums the calls and failures of the last Window.
func (b *Breaker) window(now time.Time) (calls, failures int) {
	s := b.slot(now)
	for _, bk := range b.buckets {
		if bk.slot > s-windowBuckets {
			calls += bk.calls
			failures += bk.failures
		}
	}
	return calls, failures
}
