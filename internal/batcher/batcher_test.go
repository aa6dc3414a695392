package batcher_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatprep/chatprep/internal/batcher"
	"github.com/chatprep/chatprep/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// recorder records flushed batches; block, when set, holds every flush
// until it is closed.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	started chan struct{}
	block   chan struct{}
}

func (r *recorder) flush(ctx context.Context, batch []int) {
	if r.started != nil {
		r.started <- struct{}{}
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(batch))
	r.mu.Unlock()
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n []int
	for _, b := range r.batches {
		n = append(n, len(b))
	}
	return n
}

func newBatcher(t *testing.T, cfg batcher.Config, size func(int) int, r *recorder) *batcher.Batcher[int] {
	t.Helper()
	b, err := batcher.New(cfg, size, r.flush)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFullBatchesLeaveAtOnce: the first item goes at once (the batcher was
// quiet); then, with an hour of linger, only full batches leave before
// Close, which flushes the rest.
func TestFullBatchesLeaveAtOnce(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b := newBatcher(t, batcher.Config{MaxItems: 10, Linger: time.Hour}, nil, r)
	for i := range 25 {
		if err := b.Add(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.sizes(); !slices.Equal(got, []int{1, 10, 10, 4}) {
		t.Errorf("batches %v, want [1 10 10 4]", got)
	}
	if err := b.Add(t.Context(), 1); !errors.Is(err, batcher.ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLingerBoundsTheWait: an item that comes while items are arriving
// leaves after the linger time, not later.
func TestLingerBoundsTheWait(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan struct{}, 2)}
	b := newBatcher(t, batcher.Config{MaxItems: 10, Linger: time.Millisecond}, nil, r)
	defer b.Close(context.Background()) //nolint:errcheck // flushes nothing
	for _, it := range []int{6, 7} {
		if err := b.Add(t.Context(), it); err != nil {
			t.Fatal(err)
		}
	}
	<-r.started
	<-r.started // before Close: the linger time sent the second
}

// TestLingerOnlyUnderLoad: an item that comes to a quiet batcher (nothing
// for a linger time) goes at once; items that come while others arrive
// wait the linger time for more and go together; a quiet linger time
// later the next goes at once again.
func TestLingerOnlyUnderLoad(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const linger = 10 * time.Millisecond
		r := &recorder{}
		start := time.Now()
		b := newBatcher(t, batcher.Config{MaxItems: 10, Linger: linger}, nil, r)
		add := func(it int) {
			t.Helper()
			if err := b.Add(t.Context(), it); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		batches := func(want ...[]int) {
			t.Helper()
			r.mu.Lock()
			defer r.mu.Unlock()
			if !slices.EqualFunc(r.batches, want, slices.Equal) {
				t.Errorf("after %v: batches %v, want %v", time.Since(start), r.batches, want)
			}
		}
		add(1)
		batches([]int{1}) // at once: no time has passed
		time.Sleep(time.Millisecond)
		add(2) // 1 ms after 1: the batcher is busy, 2 lingers
		time.Sleep(time.Millisecond)
		add(3)
		time.Sleep(linger - 2*time.Millisecond)
		synctest.Wait()
		batches([]int{1}) // 2 and 3 wait for more
		time.Sleep(time.Millisecond)
		synctest.Wait()
		batches([]int{1}, []int{2, 3}) // a linger time after 2
		time.Sleep(linger)
		add(4)
		batches([]int{1}, []int{2, 3}, []int{4}) // quiet again: at once
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMaxBytes: a batch never holds more bytes than MaxBytes; the item that
// does not fit starts the next one.
func TestMaxBytes(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b := newBatcher(t, batcher.Config{MaxItems: 10, MaxBytes: 100, Linger: time.Hour}, func(n int) int { return n }, r)
	for _, n := range []int{40, 40, 30, 100, 5} {
		if err := b.Add(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{40}, {40, 30}, {100}, {5}} // the first at once: the batcher was quiet
	if !slices.EqualFunc(r.batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v", r.batches, want)
	}
}

// TestGathersWhileSlotsAreBusy: while the one flush slot is busy the next
// batch gathers up to its limit; then Add waits.
func TestGathersWhileSlotsAreBusy(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan struct{}, 10), block: make(chan struct{})}
	b := newBatcher(t, batcher.Config{MaxItems: 3}, nil, r)
	if err := b.Add(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	<-r.started // the first batch, [0], is flushing and holds the slot
	for i := 1; i <= 3; i++ {
		if err := b.Add(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := b.Add(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Add to a full batch with no free slot: %v, want it to wait", err)
	}
	close(r.block)
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{0}, {1, 2, 3}}
	if !slices.EqualFunc(r.batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v", r.batches, want)
	}
}

// TestCloseDeadlineCancelsFlushes: Close whose context ends cancels the
// flushes' context and still waits for them.
func TestCloseDeadlineCancelsFlushes(t *testing.T) {
	t.Parallel()
	r := &recorder{started: make(chan struct{}, 1), block: make(chan struct{})}
	b := newBatcher(t, batcher.Config{MaxItems: 1}, nil, r)
	if err := b.Add(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	<-r.started
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close: %v, want context.Canceled", err)
	}
	if got := r.sizes(); !slices.Equal(got, []int{1}) {
		t.Errorf("batches %v: Close returned before the flush did", got)
	}
}

// TestConcurrentAddsAllFlushedOnce: many goroutines, every item in exactly
// one batch.
func TestConcurrentAddsAllFlushedOnce(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b := newBatcher(t, batcher.Config{MaxItems: 10, Linger: time.Millisecond, Concurrency: 4, Buffer: 16}, nil, r)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if err := b.Add(t.Context(), g*1000+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, batch := range r.batches {
		if len(batch) > 10 {
			t.Errorf("batch of %d", len(batch))
		}
		for _, it := range batch {
			seen[it]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("item %d flushed %d times", k, n)
		}
	}
	if len(seen) != 4000 {
		t.Errorf("%d items flushed, want 4000", len(seen))
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	flush := func(context.Context, []int) {}
	for _, cfg := range []batcher.Config{{}, {MaxItems: 1, Concurrency: -1}, {MaxItems: 1, Buffer: -1}, {MaxItems: 1, MaxBytes: 5}} {
		if _, err := batcher.New(cfg, nil, flush); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
