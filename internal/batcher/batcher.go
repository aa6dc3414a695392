// Package batcher gathers items from many goroutines into batches and hands
// each batch to a flush function: chatprep's one linger batcher, used for
// the consumer's deletes and visibility changes, the publisher's results and
// the store's Weaviate writes.
//
// A batch is flushed when it is full (Config.MaxItems, or Config.MaxBytes by
// the size function), or when it is ripe, as soon as one of
// Config.Concurrency flush slots is free; while every slot is busy the batch
// keeps gathering up to its limits (group commit), and Add waits only when
// it is full (and Config.Buffer items are waiting).
//
// Lingering costs latency and is worth it only under load, so a batch
// lingers only when the batcher is busy: a batch whose first item came
// Config.Linger or more after the item before it (a quiet batcher) is ripe
// at once, and its item goes without waiting; a batch whose first item came
// sooner (items are arriving) is ripe Config.Linger after that item. An
// idle worker's result or delete goes at once; a loaded one's calls carry
// as many items as before. Flushes run on a context of the
// batcher's own, which Close cancels only when its own context ends first,
// so a caller that gives up never cuts off a flush that others wait for.
//
// The batcher does not know what an item's outcome is: items that need one
// carry their own way to answer (a channel, a callback).
package batcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("batcher closed")

// Config configures a Batcher.
type Config struct {
	// MaxItems is the most items of a batch. Required.
	MaxItems int
	// MaxBytes bounds the sum of a batch's item sizes (as the size function
	// given to New measures them); an item alone may be larger. Zero: no
	// bound.
	MaxBytes int
	// Linger is how long a batch waits for more items after its first,
	// when that first item came less than Linger after the item before it;
	// otherwise (the batcher was quiet) the batch does not wait. Zero or
	// negative: a batch goes as soon as a slot is free.
	Linger time.Duration
	// Concurrency is how many flushes may run at once. Default 1.
	Concurrency int
	// Buffer is how many items Add hands over without waiting while the
	// batch is full. Default 0.
	Buffer int
}

// Batcher gathers items of type T into batches. It is safe for concurrent
// use. Create it with New; Close stops it.
type Batcher[T any] struct {
	cfg   Config
	size  func(T) int
	flush func(ctx context.Context, batch []T)

	mu     sync.RWMutex // held for reading while an item is handed over
	closed bool
	in     chan T
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed once the collector and every flush ended

	flushCtx    context.Context
	cancelFlush context.CancelFunc
}

// New starts a batcher that calls flush with each batch, at most
// cfg.Concurrency at a time. size measures an item for cfg.MaxBytes and may
// be nil when MaxBytes is 0.
func New[T any](cfg Config, size func(T) int, flush func(ctx context.Context, batch []T)) (*Batcher[T], error) {
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 1)
	switch {
	case cfg.MaxItems < 1:
		return nil, fmt.Errorf("batcher: MaxItems %d: must be at least 1", cfg.MaxItems)
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("batcher: Concurrency %d: must be at least 1", cfg.Concurrency)
	case cfg.Buffer < 0:
		return nil, fmt.Errorf("batcher: Buffer %d: must not be negative", cfg.Buffer)
	case cfg.MaxBytes < 0 || (cfg.MaxBytes > 0 && size == nil):
		return nil, fmt.Errorf("batcher: MaxBytes %d needs a size function and must not be negative", cfg.MaxBytes)
	case flush == nil:
		return nil, errors.New("batcher: nil flush function")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher[T]{
		cfg: cfg, size: size, flush: flush,
		in:   make(chan T, cfg.Buffer),
		quit: make(chan struct{}),
		done: make(chan struct{}),

		flushCtx: ctx, cancelFlush: cancel,
	}
	go b.collect()
	return b, nil
}

// Add hands item to the batch being gathered. It waits while that batch is
// full and every flush slot is busy, until ctx ends (ctx's error) or the
// batcher is closed (ErrClosed).
func (b *Batcher[T]) Add(ctx context.Context, item T) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.in <- item:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking items, flushes what was added and waits for every
// flush. If ctx ends first, the flushes' context is cancelled, Close waits
// for them to return and returns ctx's error. Close may be called more than
// once.
func (b *Batcher[T]) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.quit)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		b.cancelFlush()
		<-b.done
		return ctx.Err()
	}
}

// collect is the one goroutine that forms batches.
func (b *Batcher[T]) collect() {
	var (
		flushes sync.WaitGroup
		slots   = make(chan struct{}, b.cfg.Concurrency)
		batch   []T
		bytes   int
		carry   *T   // an item that did not fit the batch: the next batch's first
		ripe    bool // the batch's linger is over, or it needs none
		closing bool
		lastIn  time.Time // when the last item was taken; zero before the first
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer func() {
		timer.Stop()
		flushes.Wait()
		b.cancelFlush()
		close(b.done)
	}()
	// add puts it in the batch; quiet says the batcher was quiet when it
	// came (see the package doc).
	add := func(it T, quiet bool) {
		n := 0
		if b.cfg.MaxBytes > 0 {
			n = b.size(it)
			if len(batch) > 0 && bytes+n > b.cfg.MaxBytes {
				carry = &it
				return
			}
		}
		batch = append(batch, it)
		bytes += n
		if len(batch) == 1 && b.cfg.Linger > 0 && !closing && !quiet {
			timer.Reset(b.cfg.Linger)
		}
		ripe = ripe || b.cfg.Linger <= 0 || (len(batch) == 1 && quiet)
	}
	// send flushes the batch on the slot just taken; an item carried over
	// starts the next batch (the batcher is busy: it lingers).
	send := func() {
		out := batch
		batch, bytes, ripe = nil, 0, false
		timer.Stop()
		flushes.Go(func() {
			defer func() { <-slots }()
			b.flush(b.flushCtx, out)
		})
		if carry != nil {
			it := *carry
			carry = nil
			add(it, false)
		}
	}
	for {
		full := len(batch) >= b.cfg.MaxItems || carry != nil
		if closing && len(batch) == 0 && len(b.in) == 0 {
			return // no sender is left once closing: Close holds the lock
		}
		var in <-chan T
		if !full {
			in = b.in
		}
		var slot chan<- struct{}
		if len(batch) > 0 && (full || ripe || closing) {
			slot = slots
			// A batch that may go goes before more items are taken, if a
			// slot is free: what is ripe is not held back by what comes.
			select {
			case slot <- struct{}{}:
				send()
				continue
			default:
			}
		}
		var quit <-chan struct{}
		if !closing {
			quit = b.quit
		}
		select {
		case it := <-in:
			now := time.Now()
			quiet := lastIn.IsZero() || now.Sub(lastIn) >= b.cfg.Linger
			lastIn = now
			add(it, quiet)
		case <-timer.C:
			ripe = true
		case <-quit:
			closing = true
		case slot <- struct{}{}:
			send()
		}
	}
}
