package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSender records batches and lets a test hold them in flight.
type fakeSender struct {
	mu      sync.Mutex
	batches [][]string    // ids per batch, in send order
	ctxErrs []error       // the batch context's error when each send ended
	started chan int      // gets each batch's size when its send starts
	release chan struct{} // each send waits for one value (nil: no waiting)
	result  func(id string) error
	panics  bool
}

func (f *fakeSender) send(ctx context.Context, items []*batchItem) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.obj.id
	}
	f.mu.Lock()
	f.batches = append(f.batches, ids)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- len(items)
	}
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	panics := f.panics
	f.mu.Unlock()
	if panics {
		panic("boom")
	}
	for _, it := range items {
		var err error
		if f.result != nil {
			err = f.result(it.obj.id)
		}
		it.done <- err
	}
}

func (f *fakeSender) sent() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.batches...)
}

func obj(id string) writeObject { return writeObject{collection: "C", id: id} }

// putAsync starts one put and returns its result channel.
func putAsync(ctx context.Context, b *writes, id string) <-chan error {
	out := make(chan error, 1)
	go func() { out <- b.put(ctx, obj(id)) }()
	return out
}

// waitReceived waits until the batcher has taken n objects from callers in
// all. The batch channel is unbuffered, so from then on those objects are in
// a batch.
func waitReceived(t *testing.T, b *writes, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.received.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("batcher received %d of %d objects", b.received.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func newTestBatcher(t *testing.T, cfg batcherConfig, f *fakeSender) *writes {
	t.Helper()
	if cfg.timeout == 0 {
		cfg.timeout = time.Minute
	}
	b := newBatcher(cfg, f.send)
	t.Cleanup(b.close)
	return b
}

// TestBatcherGathersWhileBusy: while the only request slot is taken, objects
// that arrive go into the next batch, sent as one request when the slot frees.
func TestBatcherGathersWhileBusy(t *testing.T) {
	t.Parallel()
	f := &fakeSender{started: make(chan int, 10), release: make(chan struct{})}
	b := newTestBatcher(t, batcherConfig{size: 100, linger: -1, concurrency: 1}, f)
	ctx := testCtx(t, 10*time.Second)

	first := putAsync(ctx, b, "a")
	if n := <-f.started; n != 1 {
		t.Fatalf("first batch has %d objects, want 1", n)
	}
	var rest []<-chan error
	for i := range 20 {
		rest = append(rest, putAsync(ctx, b, fmt.Sprint("b", i)))
	}
	waitReceived(t, b, 21)
	f.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := <-f.started; n != 20 {
		t.Fatalf("second batch has %d objects, want 20", n)
	}
	f.release <- struct{}{}
	for _, r := range rest {
		if err := <-r; err != nil {
			t.Error(err)
		}
	}
	if got := len(f.sent()); got != 2 {
		t.Errorf("%d batches sent, want 2", got)
	}
}

// TestBatcherSizeCap: no batch is bigger than the configured size.
func TestBatcherSizeCap(t *testing.T) {
	t.Parallel()
	f := &fakeSender{started: make(chan int, 10), release: make(chan struct{}, 10)}
	b := newTestBatcher(t, batcherConfig{size: 3, linger: -1, concurrency: 1}, f)
	ctx := testCtx(t, 10*time.Second)
	var res []<-chan error
	res = append(res, putAsync(ctx, b, "first"))
	<-f.started
	for i := range 7 {
		res = append(res, putAsync(ctx, b, fmt.Sprint("o", i)))
	}
	// The loop holds a full batch of 3 and stops taking more until it is
	// sent; the rest wait in put.
	waitReceived(t, b, 4)
	for range 10 {
		f.release <- struct{}{}
	}
	for _, r := range res {
		if err := <-r; err != nil {
			t.Error(err)
		}
	}
	total := 0
	for _, batch := range f.sent() {
		if len(batch) > 3 {
			t.Errorf("batch of %d objects, cap is 3", len(batch))
		}
		total += len(batch)
	}
	if total != 8 {
		t.Errorf("%d objects sent, want 8", total)
	}
}

// TestBatcherPerObjectResults: each caller gets its own object's result from
// the shared request.
func TestBatcherPerObjectResults(t *testing.T) {
	t.Parallel()
	bad := errors.New("rejected")
	f := &fakeSender{started: make(chan int, 10), release: make(chan struct{}, 10),
		result: func(id string) error {
			if id == "bad" {
				return bad
			}
			return nil
		}}
	b := newTestBatcher(t, batcherConfig{size: 10, linger: -1, concurrency: 1}, f)
	ctx := testCtx(t, 10*time.Second)
	hold := putAsync(ctx, b, "hold")
	<-f.started
	good1, badRes, good2 := putAsync(ctx, b, "good1"), putAsync(ctx, b, "bad"), putAsync(ctx, b, "good2")
	waitReceived(t, b, 4)
	f.release <- struct{}{}
	if n := <-f.started; n != 3 {
		t.Fatalf("batch of %d objects, want the 3 in one", n)
	}
	f.release <- struct{}{}
	for _, r := range []<-chan error{hold, good1, good2} {
		if err := <-r; err != nil {
			t.Error(err)
		}
	}
	if err := <-badRes; !errors.Is(err, bad) {
		t.Errorf("bad object: %v, want its own error", err)
	}
}

// TestBatcherCallerCancel: a caller that gives up returns at once and never
// fails the others; an object whose caller gave up before its batch was sent
// is left out of the batch; the batch request's context is not the caller's.
func TestBatcherCallerCancel(t *testing.T) {
	t.Parallel()
	f := &fakeSender{started: make(chan int, 10), release: make(chan struct{}, 10)}
	b := newTestBatcher(t, batcherConfig{size: 10, linger: -1, concurrency: 1}, f)
	ctx := testCtx(t, 10*time.Second)

	hold := putAsync(ctx, b, "hold")
	<-f.started
	// gone gives up while waiting for the slot; inflight gives up while its
	// batch is being sent; stays waits to the end.
	goneCtx, cancelGone := context.WithCancel(ctx)
	inflightCtx, cancelInflight := context.WithCancel(ctx)
	gone := putAsync(goneCtx, b, "gone")
	inflight := putAsync(inflightCtx, b, "inflight")
	stays := putAsync(ctx, b, "stays")
	waitReceived(t, b, 4)
	cancelGone()
	if err := <-gone; !errors.Is(err, context.Canceled) || KindOf(err) != KindCanceled {
		t.Fatalf("gone: %v, want a KindCanceled error wrapping context.Canceled", err)
	}
	f.release <- struct{}{}
	if n := <-f.started; n != 2 {
		t.Fatalf("second batch has %d objects, want 2 (gone left out)", n)
	}
	cancelInflight()
	if err := <-inflight; !errors.Is(err, context.Canceled) {
		t.Fatalf("inflight: %v, want context.Canceled", err)
	}
	f.release <- struct{}{}
	for _, r := range []<-chan error{hold, stays} {
		if err := <-r; err != nil {
			t.Errorf("a caller that stayed failed: %v", err)
		}
	}
	for i, err := range f.ctxErrs {
		if err != nil {
			t.Errorf("batch %d ran on a canceled context: %v", i, err)
		}
	}
	for _, batch := range f.sent() {
		for _, id := range batch {
			if id == "gone" {
				t.Error("an object whose caller gave up before the send was sent")
			}
		}
	}
}

// TestBatcherCloseFlushes: Close sends what is gathered (even mid-linger) and
// waits for it; puts after Close fail with KindClosed.
func TestBatcherCloseFlushes(t *testing.T) {
	t.Parallel()
	f := &fakeSender{}
	b := newBatcher(batcherConfig{size: 10, linger: time.Hour, concurrency: 1, timeout: time.Minute}, f.send)
	ctx := testCtx(t, 10*time.Second)
	res := putAsync(ctx, b, "a")
	waitReceived(t, b, 1)
	b.close()
	if err := <-res; err != nil {
		t.Fatalf("put gathered before Close: %v", err)
	}
	if got := f.sent(); len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("sent %v, want one batch with a", got)
	}
	if err := b.put(ctx, obj("late")); KindOf(err) != KindClosed || !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v, want KindClosed", err)
	}
	b.close() // idempotent
}

// TestBatcherPanicIsTheBatchsError: a panic while sending fails that batch's
// callers with an error, and the batcher goes on.
func TestBatcherPanicIsTheBatchsError(t *testing.T) {
	t.Parallel()
	f := &fakeSender{panics: true}
	b := newTestBatcher(t, batcherConfig{size: 10, linger: -1, concurrency: 1}, f)
	ctx := testCtx(t, 10*time.Second)
	err := b.put(ctx, obj("a"))
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("put: %v, want the panic as error", err)
	}
	f.mu.Lock()
	f.panics = false
	f.mu.Unlock()
	if err := b.put(ctx, obj("b")); err != nil {
		t.Fatalf("put after a panic: %v", err)
	}
}
