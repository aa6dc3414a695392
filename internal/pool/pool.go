package pool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/internal/panics"
)

// Defaults of Config.
const (
	// DefaultSize is POOL_SIZE's default: the number of worker goroutines.
	DefaultSize = 64
	// DefaultTaskTimeout is TASK_TIMEOUT's default: the bound on one task.
	DefaultTaskTimeout = 2 * time.Second
	// DefaultQueuePerWorker sizes the queue: DefaultQueuePerWorker × Size
	// submitted tasks may wait for a worker before Go blocks. With the
	// contract's defaults (POOL_SIZE 64, MAX_IN_FLIGHT 256, five tasks per
	// message) the queue holds most of what the in-flight messages submit.
	DefaultQueuePerWorker = 16
)

// Config configures a Pool.
type Config struct {
	// Size is the number of worker goroutines (POOL_SIZE). Default DefaultSize.
	Size int
	// TaskTimeout bounds each task, counted from when a worker starts it
	// (TASK_TIMEOUT). Default DefaultTaskTimeout.
	TaskTimeout time.Duration
	// QueueSize is how many submitted tasks may wait for a worker before Go
	// blocks. Default DefaultQueuePerWorker × Size.
	QueueSize int
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Size = cmp.Or(c.Size, DefaultSize)
	c.TaskTimeout = cmp.Or(c.TaskTimeout, DefaultTaskTimeout)
	c.QueueSize = cmp.Or(c.QueueSize, DefaultQueuePerWorker*c.Size)
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Size < 1 {
		errs = append(errs, fmt.Errorf("size %d: must be at least 1", c.Size))
	}
	if c.TaskTimeout <= 0 {
		errs = append(errs, fmt.Errorf("task timeout %v: must be positive", c.TaskTimeout))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("queue size %d: must not be negative", c.QueueSize))
	}
	return errors.Join(errs...)
}

// Func is the work of one task. It must return when ctx is done.
type Func func(ctx context.Context) error

// ErrClosed is the error of a task submitted after Close.
var ErrClosed = errors.New("pool closed")

// TimeoutError is the error of a task that ran longer than TaskTimeout. It
// matches context.DeadlineExceeded with errors.Is.
type TimeoutError struct {
	After time.Duration // the task timeout
	Err   error         // what the task returned, if it returned in time to say
}

// Error reads like "timeout after 2s".
func (e *TimeoutError) Error() string { return "timeout after " + e.After.String() }

// Transient is true: a task that ran out of time (a slow dependency) may
// finish in time when tried again.
func (e *TimeoutError) Transient() bool { return true }

// Unwrap returns the task's own error, or context.DeadlineExceeded.
func (e *TimeoutError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return context.DeadlineExceeded
}

// errGoexit is the error of a task whose function called runtime.Goexit.
var errGoexit = errors.New("task called runtime.Goexit")

// Task is one submitted function. Its result is known once Done is closed.
type Task struct {
	ctx      context.Context
	fn       Func
	done     chan struct{}
	finished atomic.Bool
	err      error
	// stopQueued unregisters the answer given if ctx ends while queued.
	stopQueued func() bool
}

// Done is closed when the task has finished, timed out, was cancelled or
// never ran.
func (t *Task) Done() <-chan struct{} { return t.done }

// Err returns the task's error once Done is closed: nil when the function
// returned nil; the function's error; a *TimeoutError; a *panics.Error; the
// context's error if the task was cancelled before or while it ran; or
// ErrClosed. Like context.Context.Err, it returns nil while Done is open.
//
// A function that is answered by its timeout or cancellation may still be
// running: read what the function wrote only when Err returns nil.
func (t *Task) Err() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

// Wait blocks until the task is done or ctx ends, and returns the task's
// error or ctx's.
func (t *Task) Wait(ctx context.Context) error {
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish records the task's outcome once; later calls do nothing and report
// false.
func (t *Task) finish(err error) bool {
	if !t.claim() {
		return false
	}
	t.complete(err)
	return true
}

// claim reports whether the caller is the one to answer the task; only it
// may then call complete.
func (t *Task) claim() bool { return t.finished.CompareAndSwap(false, true) }

// complete answers the task's waiters.
func (t *Task) complete(err error) {
	t.err = err
	close(t.done)
}

// Stats are the pool's counters.
type Stats struct {
	Workers   int    // worker goroutines
	Busy      int    // workers running a task now
	Queued    int    // tasks waiting for a worker
	Completed uint64 // tasks a worker ran to their end (whatever the error)
	Skipped   uint64 // tasks never run: their context ended first, or the pool was closed
	Panics    uint64 // tasks that panicked
	Timeouts  uint64 // tasks answered with a *TimeoutError
	Overruns  uint64 // tasks answered by timeout or cancellation while their function still ran
}

// Pool is a fixed set of goroutines running submitted tasks. It is safe for
// concurrent use.
type Pool struct {
	cfg     Config
	queue   chan *Task
	timeout *TimeoutError // the context cause of a task's timeout (shared, never changed)

	mu     sync.RWMutex // held for reading while sending on queue, for writing to close it
	closed bool

	alive   atomic.Int64
	stopped chan struct{} // closed when the last worker has exited

	busy                                           atomic.Int64
	completed, skipped, panics, timeouts, overruns atomic.Uint64
}

// New starts a pool of cfg.Size workers (cfg filled with WithDefaults).
// Close stops it.
func New(cfg Config) (*Pool, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid pool configuration: %w", err)
	}
	p := &Pool{
		cfg:     cfg,
		queue:   make(chan *Task, cfg.QueueSize),
		timeout: &TimeoutError{After: cfg.TaskTimeout},
		stopped: make(chan struct{}),
	}
	p.alive.Store(int64(cfg.Size))
	for range cfg.Size {
		go p.worker()
	}
	return p, nil
}

// Config returns the pool's configuration, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Go submits fn and returns its Task at once if a worker or a queue slot is
// free; otherwise it blocks until one is, or ctx ends. It never fails: a task
// that cannot be submitted (ctx ended, pool closed) comes back already done
// with the reason as its error. fn receives a context derived from ctx that
// ends after TaskTimeout.
func (p *Pool) Go(ctx context.Context, fn Func) *Task {
	t := &Task{ctx: ctx, fn: fn, done: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		p.skipped.Add(1)
		t.finish(err)
		return t
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.skipped.Add(1)
		t.finish(ErrClosed)
		return t
	}
	// A task cancelled while queued is answered at once; the worker that
	// later takes it from the queue skips it.
	t.stopQueued = context.AfterFunc(ctx, func() { t.finish(ctx.Err()) })
	select {
	case p.queue <- t:
	case <-ctx.Done():
		p.skipped.Add(1)
		t.finish(ctx.Err())
	}
	return t
}

// Close stops accepting tasks and waits until the queued ones are done and
// every worker has exited, or ctx ends (then it returns ctx's error; the
// workers still exit once their tasks return). Close it after the messages
// that submit to it have finished. Calling Close again waits again.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	select {
	case <-p.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for pool workers to finish: %w", ctx.Err())
	}
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		Workers:   p.cfg.Size,
		Busy:      int(p.busy.Load()),
		Queued:    len(p.queue),
		Completed: p.completed.Load(),
		Skipped:   p.skipped.Load(),
		Panics:    p.panics.Load(),
		Timeouts:  p.timeouts.Load(),
		Overruns:  p.overruns.Load(),
	}
}

func (p *Pool) worker() {
	exited := false
	defer func() {
		if !exited { // a task called runtime.Goexit: replace this worker
			go p.worker()
			return
		}
		if p.alive.Add(-1) == 0 {
			close(p.stopped)
		}
	}()
	for t := range p.queue {
		p.run(t)
	}
	exited = true
}

// run runs one task on the calling worker.
func (p *Pool) run(t *Task) {
	if !t.stopQueued() || t.ctx.Err() != nil {
		// Cancelled while queued: already answered (or about to be).
		p.skipped.Add(1)
		t.finish(t.ctx.Err())
		return
	}
	p.busy.Add(1)
	ctx, cancel := context.WithTimeoutCause(t.ctx, p.cfg.TaskTimeout, p.timeout)
	// Answer the waiter as soon as the timeout passes or t.ctx is
	// cancelled, even if fn does not return yet.
	// Whoever answers the waiter updates the counters first, so a waiter
	// sees them.
	stop := context.AfterFunc(ctx, func() {
		if t.claim() {
			p.overruns.Add(1)
			p.countTimeout(ctx)
			t.complete(p.outcome(ctx, nil, false))
		}
	})
	returned := false
	defer func() {
		if !returned { // fn called runtime.Goexit; the worker is replaced
			stop()
			t.finish(errGoexit)
		}
		cancel()
		p.busy.Add(-1)
	}()
	err := p.call(ctx, t.fn)
	returned = true
	stop()
	p.completed.Add(1)
	if t.claim() {
		p.countTimeout(ctx)
		t.complete(p.outcome(ctx, err, true))
	}
}

func (p *Pool) countTimeout(ctx context.Context) {
	if context.Cause(ctx) == p.timeout {
		p.timeouts.Add(1)
	}
}

// outcome is the task's error given what fn returned (returned is false
// when it has not returned yet).
func (p *Pool) outcome(ctx context.Context, err error, returned bool) error {
	if ctx.Err() == nil || (returned && err == nil) {
		return err
	}
	cause := context.Cause(ctx)
	if cause != p.timeout {
		// t.ctx itself ended: report fn's own error if it has one, else why.
		return cmp.Or(err, cause)
	}
	if !returned {
		return p.timeout
	}
	return &TimeoutError{After: p.cfg.TaskTimeout, Err: err}
}

// call runs fn, turning a panic into a *panics.Error.
func (p *Pool) call(ctx context.Context, fn Func) (err error) {
	panicked := true
	defer func() {
		if panicked {
			p.panics.Add(1)
		}
	}()
	defer panics.Recover(&err)
	err = fn(ctx)
	panicked = false
	return err
}
