package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/fifo"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/lease"
	"github.com/chatprep/chatprep/internal/slots"
)

// state is where a delivery is in its life. Transitions happen under run.mu.
type state uint8

const (
	stQueued   state = iota // received, waiting to start
	stRunning               // its handler is running
	stSettling              // outcome known; its acknowledgement is on its way
)

// outcome is what is done with a message once its handler is done.
type outcome uint8

const (
	doDelete     outcome = iota // finished: delete it
	doBackoff                   // failed: give it back after a back-off
	doRelease                   // give it back at once (visibility 0)
	doDrop                      // lease lost: nothing can be acknowledged
	doDeleteLost                // lease lost, but the handler finished: try the delete anyway
)

// delivery is one received message. Fields below lease are guarded by
// run.mu.
type delivery struct {
	handler.Message
	lease *lease.Lease

	state   state
	lost    bool
	cancel  context.CancelCauseFunc // its handler's context, once started
	lostAck bool                    // its delete is tried although its lease was lost
}

// run is the state of one Run call.
type run struct {
	c       *Consumer
	h       handler.Handler
	cfg     Config
	fifo    bool
	log     zerolog.Logger
	warnLog zerolog.Logger // per-message warnings, rate-limited
	slots   *slots.Slots   // room under MaxInFlight
	leases  *lease.Keeper
	acks    *acker
	retry   backoff.Policy // a failed message's visibility back-off

	minBatch int             // a receiver waits for room for at least this many
	runCtx   context.Context // Run's: done once the stop begins
	workCtx  context.Context // parent of handler contexts
	handlers sync.WaitGroup

	mu         sync.Mutex
	stopping   bool                      // no new polls: the received messages are finished
	polling    bool                      // a receiver may still bring messages
	cutoff     bool                      // the drain bound passed: nothing starts any more
	parked     []func()                  // releases held back while a poll may still bring them back
	ready      []*delivery               // startable, in order
	groups     fifo.Sequencer[*delivery] // FIFO: each group's running message and those behind it
	running    int
	live       int           // received and not yet settled
	idle       chan struct{} // closed once stopping and no handler runs
	idleClosed bool
	drained    chan struct{} // closed once stopping and nothing is live
	drainDone  bool
	noGroup    bool           // warned about FIFO messages without a group
	polls      []atomic.Int64 // per receiver: when its poll in flight ends (UnixNano), 0 between polls
}

func newRun(c *Consumer, h handler.Handler) (*run, error) {
	cfg := c.cfg
	r := &run{
		c:        c,
		h:        h,
		cfg:      cfg,
		fifo:     cfg.fifo(),
		log:      c.log,
		warnLog:  c.log.Sample(burst()),
		slots:    slots.New(cfg.MaxInFlight),
		leases:   c.leases,
		retry:    backoff.Policy{Base: cfg.RetryBackoff, Max: cfg.RetryBackoffMax},
		minBatch: min(MaxBatch, max(1, cfg.MaxInFlight/(2*cfg.Receivers))),
		idle:     make(chan struct{}),
		drained:  make(chan struct{}),
		polling:  true,
		polls:    make([]atomic.Int64, cfg.Receivers),
	}
	var err error
	r.acks, err = newAcker(r)
	return r, err
}

// accept takes the messages of one receive, whose leases began at
// leaseStart: they are queued and started as room allows, also after the
// stop (a poll in flight then ran to its end); past the drain bound they are
// released at once.
func (r *run) accept(msgs []types.Message, leaseStart time.Time) {
	now := time.Now()
	r.c.stats.received.Add(int64(len(msgs)))
	r.c.stats.inFlight.Add(int64(len(msgs)))
	var acts []func()
	r.mu.Lock()
	r.live += len(msgs)
	for _, m := range msgs {
		d := &delivery{Message: handler.FromSQS(m, now)}
		d.lease = r.leases.Hold(aws.ToString(m.ReceiptHandle), leaseStart, func(why string) { r.lose(d, why) })
		if r.cutoff {
			acts = append(acts, r.settleLocked(d, doRelease))
			continue
		}
		r.enqueueLocked(d)
	}
	acts = append(acts, r.dispatchLocked()...)
	r.mu.Unlock()
	runAll(acts)
}

// enqueueLocked queues d: on a FIFO queue behind the messages of its group
// already here, otherwise (or if it is the group's first) as ready.
func (r *run) enqueueLocked(d *delivery) {
	if !r.fifo {
		r.ready = append(r.ready, d)
		return
	}
	if d.GroupID == "" && !r.noGroup {
		r.noGroup = true
		r.log.Warn().Str("message_id", d.ID).
			Msg("FIFO message without MessageGroupId: such messages are handled one at a time")
	}
	if r.groups.Add(d.GroupID, d) {
		r.ready = append(r.ready, d)
	}
}

// dispatchLocked starts ready messages while there is room.
func (r *run) dispatchLocked() (acts []func()) {
	for !r.cutoff && r.running < r.cfg.Concurrency && len(r.ready) > 0 {
		d := r.ready[0]
		r.ready[0] = nil
		r.ready = r.ready[1:]
		if d.state != stQueued { // its lease was lost while it waited
			if r.fifo {
				acts = append(acts, r.advanceLocked(d, true)...)
			}
			continue
		}
		d.state = stRunning
		r.running++
		ctx, cancel := context.WithCancelCause(r.workCtx)
		d.cancel = cancel
		r.handlers.Add(1)
		go r.handle(ctx, d)
	}
	return acts
}

// advanceLocked moves d's FIFO group on once d is done: the next message of
// the group becomes ready. If the group's order is broken (d failed or its
// lease was lost), the rest of the group is released at once instead, so it
// neither runs out of order nor stalls until its visibility timeout.
func (r *run) advanceLocked(d *delivery, broken bool) (acts []func()) {
	if broken {
		for _, w := range r.groups.Break(d.GroupID) {
			if w.state == stQueued {
				acts = append(acts, r.settleLocked(w, doRelease))
			}
		}
		return acts
	}
	next, ok := r.groups.Next(d.GroupID)
	switch {
	case !ok:
		return nil
	case next.state != stQueued: // lost while it waited: the order is broken after it
		return r.advanceLocked(next, true)
	}
	r.ready = append(r.ready, next)
	return nil
}

// handle runs the handler for d and settles the outcome.
func (r *run) handle(ctx context.Context, d *delivery) {
	defer r.handlers.Done()
	d.Behind = fifo.Behind(&r.mu, &r.groups, d.GroupID, func(w *delivery) string { return w.Body }) // none unless FIFO
	err := r.h.Handle(ctx, &d.Message)
	cause := context.Cause(ctx)
	d.cancel(nil)
	if err == nil {
		r.c.stats.finished.Add(1)
	} else {
		r.c.stats.failed.Add(1)
	}
	r.mu.Lock()
	o := doDelete
	switch {
	case d.lost && err == nil:
		// Lost (extensions failed until the deadline), yet finished: most
		// often nobody took it since, and left alone it would be handled
		// again, after the FIFO deduplication window perhaps.
		o = doDeleteLost
	case d.lost:
		o = doDrop
	case err == nil:
	case errors.Is(cause, ErrShutdownTimeout), handler.IsTransient(err) && r.runCtx.Err() != nil:
		o = doRelease // another worker can take it at once
	default:
		o = doBackoff
	}
	r.running--
	acts := []func(){r.settleLocked(d, o)}
	if r.fifo {
		acts = append(acts, r.advanceLocked(d, o != doDelete)...)
	}
	acts = append(acts, r.dispatchLocked()...)
	r.checkIdleLocked()
	r.mu.Unlock()
	runAll(acts)
}

// lose is d's lease's onLost: a waiting message is dropped (SQS gives it to
// someone else); a running handler's context is cancelled with ErrLeaseLost
// so it cannot publish a result another worker will publish too (should it
// finish all the same, its message is deleted anyway: doDeleteLost).
func (r *run) lose(d *delivery, why string) {
	r.warnLog.Warn().Str("message_id", d.ID).Str("reason", why).
		Float64("since_receipt_ms", ms(time.Since(d.ReceivedAt))).Msg("message lease lost")
	r.mu.Lock()
	var act func()
	d.lost = true
	switch d.state {
	case stQueued:
		act = r.settleLocked(d, doDrop)
	case stRunning:
		d.cancel(ErrLeaseLost)
	}
	r.mu.Unlock()
	if act != nil {
		act()
	}
}

// settleLocked marks d settled and returns its acknowledgement, to run
// after the lock is released: its lease ends (after an extension in flight,
// if any) and the delete or visibility change is queued. If the lease was
// lost meanwhile, nothing is acknowledged.
func (r *run) settleLocked(d *delivery, o outcome) func() {
	d.state = stSettling
	var ack func()
	switch o {
	case doDeleteLost:
		d.lostAck = true
		return func() { r.acks.delete(d) } // the lease is over: nothing to end
	case doDelete:
		ack = func() { r.acks.delete(d) }
	case doBackoff:
		if r.cfg.RetryBackoff < 0 {
			break
		}
		vis := r.failureVisibility(d.ReceiveCount, d.lease.Remaining(time.Now()))
		ack = func() { r.acks.change(d, vis) }
	case doRelease:
		ack = func() { r.acks.change(d, 0) }
		if r.runCtx.Err() != nil && r.polling {
			// A poll in flight would take it right back (one more receive
			// towards MAX_RECEIVE_COUNT): give it back once none is.
			release := ack
			r.parked = append(r.parked, func() {
				if !r.leases.End(d.lease, release) {
					r.done(d)
				}
			})
			return nil
		}
	}
	return func() {
		if o == doDrop || !r.leases.End(d.lease, ack) || ack == nil {
			r.done(d)
		}
	}
}

// failureVisibility is the visibility, in whole seconds, a failed message
// is given: the retry back-off for its receive count, within what remains
// of SQS's 12-hour cap, rounded up (never 0 for a real back-off).
func (r *run) failureVisibility(receiveCount int, remaining time.Duration) time.Duration {
	d := min(r.retry.Delay(max(receiveCount-1, 0)), remaining)
	return max((d+time.Second-1)/time.Second*time.Second, 0)
}

// done ends d's life: its slot is free again.
func (r *run) done(d *delivery) {
	r.mu.Lock()
	r.live--
	r.checkDrainedLocked()
	r.mu.Unlock()
	r.c.stats.inFlight.Add(-1)
	r.slots.Release(1)
}

// stop begins the drain: no new poll starts. The messages received, and
// those the polls in flight bring, are still handled, within the drain
// bound: a message finished here costs no redelivery, no receive towards
// MAX_RECEIVE_COUNT, and no wait for another worker.
func (r *run) stop() {
	r.mu.Lock()
	r.stopping = true
	r.checkIdleLocked()
	r.mu.Unlock()
}

// pollsDone records that every receiver has returned: no message arrives
// any more.
func (r *run) pollsDone() {
	r.mu.Lock()
	r.polling = false
	parked := r.parked
	r.parked = nil
	r.checkIdleLocked()
	r.checkDrainedLocked()
	r.mu.Unlock()
	runAll(parked)
}

// cut ends the drain's handling (its bound passed, or there is none): nothing
// starts any more, and every message still waiting is released at once.
func (r *run) cut() {
	var acts []func()
	r.mu.Lock()
	r.cutoff = true
	queued := append(r.ready, r.groups.Drain()...)
	r.ready = nil
	for _, d := range queued {
		if d.state == stQueued {
			acts = append(acts, r.settleLocked(d, doRelease))
		}
	}
	r.checkIdleLocked()
	r.mu.Unlock()
	runAll(acts)
}

// checkIdleLocked closes idle once the drain has nothing left to run: no
// poll may bring more, no handler runs, none waits to start.
func (r *run) checkIdleLocked() {
	if r.stopping && !r.polling && r.running == 0 && (len(r.ready) == 0 || r.cutoff) && !r.idleClosed {
		r.idleClosed = true
		close(r.idle)
	}
}

func (r *run) checkDrainedLocked() {
	if r.stopping && !r.polling && r.live == 0 && !r.drainDone {
		r.drainDone = true
		close(r.drained)
	}
}

// counts is how many handlers run and how many messages are received and
// not yet settled.
func (r *run) counts() (running, live int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running, r.live
}

// runAll runs the deferred actions, skipping nil ones.
func runAll(acts []func()) {
	for _, a := range acts {
		if a != nil {
			a()
		}
	}
}
