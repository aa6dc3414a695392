package store

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/internal/batcher"
	"github.com/chatprep/chatprep/internal/panics"
)

// writeObject is one object to write (replace) by id.
type writeObject struct {
	collection string
	tenant     string // "" for none (see tenantOf)
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

// writes gathers objects from concurrent callers into batch requests with
// the worker's one linger batcher (internal/batcher): one request per
// batch, each caller gets its own object's result. Requests run on the
// batcher's context, bounded by the request timeout, so a caller that gives
// up never fails the others.
type writes struct {
	cfg  batcherConfig
	send sendFunc
	b    *batcher.Batcher[*batchItem]

	// received counts objects taken from callers; tests wait on it.
	received atomic.Int64
}

func newBatcher(cfg batcherConfig, send sendFunc) *writes {
	w := &writes{cfg: cfg, send: send}
	var err error
	w.b, err = batcher.New(batcher.Config{MaxItems: cfg.size, Linger: cfg.linger, Concurrency: cfg.concurrency}, nil, w.flush)
	if err != nil {
		panic(err) // Config.validate keeps the sizes positive
	}
	return w
}

// put hands obj to the next batch and waits for its result. When ctx ends
// first, put returns at once; the object may still be written (writes are
// idempotent replaces, so a retry is harmless).
func (w *writes) put(ctx context.Context, obj writeObject) error {
	item := &batchItem{obj: obj, ctx: ctx, done: make(chan error, 1)}
	if err := w.b.Add(ctx, item); err != nil {
		if errors.Is(err, batcher.ErrClosed) {
			return &Error{Kind: KindClosed, Err: ErrClosed}
		}
		return callError(ctx, err)
	}
	w.received.Add(1)
	select {
	case err := <-item.done:
		return err
	case <-ctx.Done():
		return callError(ctx, ctx.Err())
	}
}

// close sends what is gathered, waits for every request, and stops.
func (w *writes) close() { _ = w.b.Close(context.Background()) }

// flush sends the items whose callers still wait. A panic while sending is
// the batch's error, not the process's end.
func (w *writes) flush(ctx context.Context, batch []*batchItem) {
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
	ctx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	var err error
	func() {
		defer panics.Recover(&err)
		w.send(ctx, live)
	}()
	if err != nil {
		err = &Error{Kind: KindRejected, Detail: "panic while sending a batch", Err: err}
		for _, it := range live {
			select {
			case it.done <- err:
			default: // already has its result
			}
		}
	}
}
