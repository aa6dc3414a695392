package breaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
	return errors.Join(errs...)
}

// State is the breaker's state.
type State int

// The states.
const (
	Closed   State = iota // calls go through
	Open                  // calls fail fast; Wait blocks
	HalfOpen              // one probe call goes through
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
	probing      bool
	cause        error
	changed      chan struct{} // closed and replaced when state or probing changes
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

// Allow asks to make one call. If the breaker lets it through, the caller
// makes the call with ctx and reports its error (nil for success) to done,
// exactly once. Otherwise Allow returns an *OpenError.
func (b *Breaker) Allow(ctx context.Context) (done func(err error), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.cfg.Clock.Now())
	switch {
	case b.state == Open:
		return nil, &OpenError{Name: b.cfg.Name, State: Open, Until: b.openUntil, Cause: b.cause}
	case b.state == HalfOpen && b.probing:
		return nil, &OpenError{Name: b.cfg.Name, State: HalfOpen, Cause: b.cause}
	}
	probe := b.state == HalfOpen
	if probe {
		b.probing = true
		b.notify()
	}
	gen := b.generation
	var once sync.Once
	return func(err error) { once.Do(func() { b.record(ctx, gen, probe, err) }) }, nil
}

// Do runs fn through the breaker.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	done, err := b.Allow(ctx)
	if err != nil {
		return err
	}
	err = fn(ctx)
	done(err)
	return err
}

// Call runs fn through b and returns its value.
func Call[T any](ctx context.Context, b *Breaker, fn func(ctx context.Context) (T, error)) (T, error) {
	done, err := b.Allow(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := fn(ctx)
	done(err)
	return v, err
}

// Wait blocks while the breaker refuses calls (open, or half-open with its
// probe in flight) and returns nil once a call may go through, or ctx's
// error. It is the consumer's pause gate.
func (b *Breaker) Wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := b.cfg.Clock.Now()
		b.advance(now)
		if b.state == Closed || (b.state == HalfOpen && !b.probing) {
			b.mu.Unlock()
			return nil
		}
		changed := b.changed
		var timer <-chan time.Time
		if b.state == Open {
			timer = b.cfg.Clock.After(b.openUntil.Sub(now))
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-timer:
		}
	}
}

// classify tells whether a call's outcome counts as a failure, a success,
// or neither (ignore).
func (b *Breaker) classify(ctx context.Context, err error) (failure, ignore bool) {
	switch {
	case err == nil:
		return false, false
	case errors.Is(ctx.Err(), context.Canceled):
		return false, true // the caller cancelled: says nothing about the dependency
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
		b.set(Closed)
		b.failedProbes = 0
		b.consecutive = 0
		b.buckets = [windowBuckets]bucket{}
		b.cause = nil
		b.log.Info().Msg("circuit breaker closed: probe succeeded")
	}
}

// advance moves an open breaker whose time is up to half-open.
func (b *Breaker) advance(now time.Time) {
	if b.state == Open && !now.Before(b.openUntil) {
		b.set(HalfOpen)
		b.log.Info().Msg("circuit breaker half-open: the next call probes")
	}
}

func (b *Breaker) open(now time.Time, cause error, reason string) {
	b.set(Open)
	openFor := backoff.Policy{Base: b.cfg.OpenFor, Max: b.cfg.MaxOpenFor, NoJitter: true}.Step(b.failedProbes)
	b.openUntil = now.Add(openFor)
	b.cause = cause
	b.log.Warn().Err(cause).Str("reason", reason).Float64("open_for_ms", float64(openFor.Milliseconds())).
		Msg("circuit breaker open: calls fail fast and receiving pauses")
}

func (b *Breaker) set(s State) {
	b.state = s
	b.generation++
	b.probing = false
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
