package store

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// writeObject is one object to write (replace) by id.
type writeObject struct {
	collection string
	id         string
	props      objectProps
}

// objectProps are an object's properties; every value is a string (text or
// RFC 3339 date) or a bool. A property left out is absent (null).
type objectProps map[string]any

// batchItem is one caller's object and where its own result goes.
type batchItem struct {
	obj  writeObject
	ctx  context.Context // the caller's; an item whose caller gave up is not sent
	done chan error      // buffered: the flush never waits for the caller
}

type batcherConfig struct {
	size        int           // most items per batch
	linger      time.Duration // wait for more items after the first; <= 0: none
	concurrency int           // batch requests in flight
	timeout     time.Duration // bound on one batch request
}

// sendFunc writes the items in one request and sets every item's result
// (done gets exactly one value per item).
type sendFunc func(ctx context.Context, items []*batchItem)

// batcher gathers objects from concurrent callers into batch requests: one
// request per batch, each caller gets its own object's result. A batch is
// sent when it is full, or when the linger time after its first object has
// passed and a request slot is free; while all slots are busy the next batch
// keeps gathering. Requests run on their own context (bounded by timeout), so
// a caller that gives up never fails the others.
type batcher struct {
	cfg  batcherConfig
	send sendFunc
	in   chan *batchItem
	quit chan struct{} // closed by close: flush what is gathered, then stop
	done chan struct{} // closed when the loop and every request have ended
	once sync.Once

	// received counts objects taken from callers; tests wait on it.
	received atomic.Int64
}

func newBatcher(cfg batcherConfig, send sendFunc) *batcher {
	b := &batcher{
		cfg:  cfg,
		send: send,
		in:   make(chan *batchItem),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.run()
	return b
}

// put hands obj to the next batch and waits for its result. When ctx ends
// first, put returns at once; the object may still be written (writes are
// idempotent replaces, so a retry is harmless).
func (b *batcher) put(ctx context.Context, obj writeObject) error {
	item := &batchItem{obj: obj, ctx: ctx, done: make(chan error, 1)}
	select {
	case b.in <- item:
	case <-ctx.Done():
		return callError(ctx, ctx.Err())
	case <-b.quit:
		return &Error{Kind: KindClosed, Err: ErrClosed}
	}
	select {
	case err := <-item.done:
		return err
	case <-ctx.Done():
		return callError(ctx, ctx.Err())
	}
}

// close sends what is gathered, waits for every request, and stops.
func (b *batcher) close() {
	b.once.Do(func() { close(b.quit) })
	<-b.done
}

func (b *batcher) run() {
	var wg sync.WaitGroup
	defer close(b.done)
	defer wg.Wait()
	slots := make(chan struct{}, b.cfg.concurrency)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first *batchItem
		select {
		case first = <-b.in:
			b.received.Add(1)
		case <-b.quit:
			return
		}
		batch := make([]*batchItem, 1, b.cfg.size)
		batch[0] = first
		quitting := false

		// Gather until full or the linger time is over.
		if b.cfg.linger > 0 {
			timer.Reset(b.cfg.linger)
		gather:
			for len(batch) < b.cfg.size {
				select {
				case it := <-b.in:
					b.received.Add(1)
					batch = append(batch, it)
				case <-timer.C:
					break gather
				case <-b.quit:
					quitting = true
					break gather
				}
			}
			timer.Stop()
		}
		// Wait for a request slot, still gathering while the batch has room.
		for sent := false; !sent; {
			in := b.in
			if len(batch) >= b.cfg.size || quitting {
				in = nil
			}
			select {
			case slots <- struct{}{}:
				sent = true
			case it := <-in:
				b.received.Add(1)
				batch = append(batch, it)
			}
		}
		wg.Add(1)
		go func(batch []*batchItem) {
			defer wg.Done()
			defer func() { <-slots }()
			b.flush(batch)
		}(batch)
		if quitting {
			return
		}
	}
}

// flush sends the items whose callers still wait. A panic while sending is
// the batch's error, not the process's end.
func (b *batcher) flush(batch []*batchItem) {
	live := batch[:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.done <- callError(it.ctx, err)
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			err := &Error{Kind: KindRejected, Detail: fmt.Sprintf("panic while sending a batch: %v\n%s", p, debug.Stack())}
			for _, it := range live {
				select {
				case it.done <- err:
				default: // already has its result
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.timeout)
	defer cancel()
	b.send(ctx, live)
}
