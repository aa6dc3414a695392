package pool_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/panics"
	"github.com/chatprep/chatprep/internal/pool"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// newPool starts a pool that the test closes when it ends.
func newPool(t testing.TB, cfg pool.Config) *pool.Pool {
	t.Helper()
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

// blocker occupies a worker until released, and says when it started.
type blocker struct {
	started, release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) fn(context.Context) error {
	close(b.started)
	<-b.release
	return nil
}

func TestTasksReturnTheirErrors(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 2})
	boom := errors.New("boom")
	ok := p.Go(t.Context(), func(context.Context) error { return nil })
	bad := p.Go(t.Context(), func(context.Context) error { return boom })
	if err := ok.Wait(t.Context()); err != nil {
		t.Errorf("ok task: %v", err)
	}
	if err := bad.Wait(t.Context()); !errors.Is(err, boom) {
		t.Errorf("failing task: %v, want %v", err, boom)
	}
	if err := bad.Err(); !errors.Is(err, boom) {
		t.Errorf("Err after Done: %v", err)
	}
}

// TestSaturatedPoolFinishesEveryMessage: with one worker and hundreds of
// messages each waiting for five tasks, everything finishes, because the
// messages wait on their own goroutines, not on pool workers.
func TestSaturatedPoolFinishesEveryMessage(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1, QueueSize: 1})
	const messages, tasksPerMessage = 300, 5
	var ran atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, messages)
	for range messages {
		wg.Go(func() {
			tasks := make([]*pool.Task, tasksPerMessage)
			for i := range tasks {
				tasks[i] = p.Go(t.Context(), func(context.Context) error { ran.Add(1); return nil })
			}
			for _, task := range tasks {
				if err := task.Wait(t.Context()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ran.Load(); got != messages*tasksPerMessage {
		t.Errorf("ran %d tasks, want %d", got, messages*tasksPerMessage)
	}
}

// TestCancelledQueuedTaskNeverRuns: a task whose context ends while it waits
// for a worker is answered at once and its function never runs.
func TestCancelledQueuedTaskNeverRuns(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1})
	b := newBlocker()
	p.Go(t.Context(), b.fn)
	<-b.started

	ctx, cancel := context.WithCancel(t.Context())
	var ran atomic.Bool
	queued := p.Go(ctx, func(context.Context) error { ran.Store(true); return nil })
	cancel()
	if err := queued.Wait(t.Context()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled task: %v, want context.Canceled", err)
	}
	close(b.release)
	// A task queued behind the cancelled one shows the worker has passed it.
	if err := p.Go(t.Context(), func(context.Context) error { return nil }).Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("the cancelled task ran")
	}
	if s := p.Stats(); s.Skipped != 1 {
		t.Errorf("Skipped = %d, want 1", s.Skipped)
	}
}

func TestGoWithEndedContextIsDoneAtOnce(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task := p.Go(ctx, func(context.Context) error { t.Error("ran"); return nil })
	select {
	case <-task.Done():
	default:
		t.Fatal("task not done")
	}
	if !errors.Is(task.Err(), context.Canceled) {
		t.Errorf("err = %v", task.Err())
	}
}

// TestGoBlocksOnAFullQueueUntilItsContextEnds: submitting waits for room
// and gives up with the caller's context.
func TestGoBlocksOnAFullQueueUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1, QueueSize: 1})
	b := newBlocker()
	p.Go(t.Context(), b.fn)
	<-b.started
	filler := p.Go(t.Context(), func(context.Context) error { return nil }) // fills the queue

	ctx, cancel := context.WithCancel(t.Context())
	submitted := make(chan *pool.Task)
	go func() {
		submitted <- p.Go(ctx, func(context.Context) error { t.Error("ran"); return nil })
	}()
	cancel()
	task := <-submitted
	if err := task.Wait(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("blocked submit: %v, want context.Canceled", err)
	}
	close(b.release)
	if err := filler.Wait(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestTaskTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 20 * time.Millisecond
	p := newPool(t, pool.Config{Size: 1, TaskTimeout: timeout})
	task := p.Go(t.Context(), func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("query: %w", ctx.Err())
	})
	err := task.Wait(t.Context())
	var te *pool.TimeoutError
	if !errors.As(err, &te) || te.After != timeout {
		t.Fatalf("err = %v, want a *TimeoutError after %v", err, timeout)
	}
	if err.Error() != "timeout after 20ms" {
		t.Errorf("text %q", err.Error())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("a timeout should match context.DeadlineExceeded")
	}
	if s := p.Stats(); s.Timeouts != 1 {
		t.Errorf("Timeouts = %d", s.Timeouts)
	}
}

// TestTaskIgnoringItsContextIsAnsweredAtItsTimeout: the waiter does not
// depend on the function honouring its context.
func TestTaskIgnoringItsContextIsAnsweredAtItsTimeout(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1, TaskTimeout: 10 * time.Millisecond})
	release := make(chan struct{})
	returned := make(chan struct{})
	task := p.Go(t.Context(), func(context.Context) error {
		defer close(returned)
		<-release // ignores its context
		return nil
	})
	var te *pool.TimeoutError
	if err := task.Wait(t.Context()); !errors.As(err, &te) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	close(release)
	<-returned
	if err := task.Err(); !errors.As(err, &te) {
		t.Errorf("after the function returned, Err = %v; the first answer must stay", err)
	}
	// The worker is free again.
	if err := p.Go(t.Context(), func(context.Context) error { return nil }).Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Overruns != 1 {
		t.Errorf("Overruns = %d, want 1", s.Overruns)
	}
}

func TestCancelWhileRunning(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1})
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	task := p.Go(ctx, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	<-started
	cancel()
	if err := task.Wait(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	var te *pool.TimeoutError
	if errors.As(task.Err(), &te) {
		t.Error("a cancellation is not a timeout")
	}
}

func TestPanicBecomesTheTasksError(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1})
	err := p.Go(t.Context(), func(context.Context) error { panicky(); return nil }).Wait(t.Context())
	var pe *panics.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *panics.Error", err)
	}
	if pe.Value != "kaputt" || pe.Short() != "panic: kaputt" {
		t.Errorf("value %v, short %q", pe.Value, pe.Short())
	}
	if !strings.Contains(string(pe.Stack), "panicky") || !strings.Contains(err.Error(), "panicky") {
		t.Errorf("stack does not name the panicking function:\n%s", pe.Stack)
	}
	// The worker survived.
	if err := p.Go(t.Context(), func(context.Context) error { return nil }).Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Panics != 1 {
		t.Errorf("Panics = %d", s.Panics)
	}
}

func panicky() { panic("kaputt") }

func TestGoexitInATaskKeepsThePoolWorking(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Size: 1})
	if err := p.Go(t.Context(), func(context.Context) error { runtime.Goexit(); return nil }).Wait(t.Context()); err == nil {
		t.Fatal("a task that called Goexit reported success")
	}
	if err := p.Go(t.Context(), func(context.Context) error { return nil }).Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestCloseRunsQueuedTasksThenRefusesNewOnes(t *testing.T) {
	t.Parallel()
	p, err := pool.New(pool.Config{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := newBlocker()
	p.Go(t.Context(), b.fn)
	<-b.started
	var ran atomic.Bool
	queued := p.Go(t.Context(), func(context.Context) error { ran.Store(true); return nil })

	closed := make(chan error)
	go func() { closed <- p.Close(context.Background()) }()
	// Close waits for the blocked task; a deadline makes a second Close give up.
	short, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Close(short); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with an ended context: %v", err)
	}
	close(b.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := queued.Err(); err != nil || !ran.Load() {
		t.Errorf("queued task: err %v, ran %v; want it run", err, ran.Load())
	}
	if err := p.Go(t.Context(), func(context.Context) error { return nil }).Err(); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Go after Close: %v, want ErrClosed", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c := pool.Config{}.WithDefaults()
	if c.Size != pool.DefaultSize || c.TaskTimeout != pool.DefaultTaskTimeout || c.QueueSize != pool.DefaultQueuePerWorker*pool.DefaultSize {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []pool.Config{{Size: -1}, {TaskTimeout: -time.Second}, {QueueSize: -1}} {
		if _, err := pool.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

// TestNoGoroutinePerTask: a thousand queued tasks cost no goroutines beyond
// the workers. Not parallel: it counts the process's goroutines.
func TestNoGoroutinePerTask(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := pool.New(pool.Config{Size: 4, QueueSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	tasks := make([]*pool.Task, 1000)
	for i := range tasks {
		tasks[i] = p.Go(t.Context(), func(context.Context) error { <-release; return nil })
	}
	// At most the four workers: goroutines of earlier tests may still be
	// exiting, so the count can only be bounded from above.
	if got := runtime.NumGoroutine() - before; got > 4 {
		t.Errorf("%d more goroutines for 4 workers and 1000 tasks", got)
	}
	close(release)
	for _, task := range tasks {
		if err := task.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkGoWait is the pool's cost per task: submit a task that does
// nothing and wait for it.
func BenchmarkGoWait(b *testing.B) {
	p := newPool(b, pool.Config{Size: 4})
	ctx, cancel := context.WithCancel(context.Background()) // a message's context, cancellable
	defer cancel()
	noop := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Go(ctx, noop).Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoWaitParallel is the same with many submitters at once, as when
// many messages are in flight (each with its own context).
func BenchmarkGoWaitParallel(b *testing.B) {
	p := newPool(b, pool.Config{Size: 64})
	noop := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for pb.Next() {
			if err := p.Go(ctx, noop).Wait(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
