package consumer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"
)

// Concurrent acknowledgement calls in flight.
const (
	deleteWorkers = 4
	changeWorkers = 2
)

// state is where a delivery is in its life. All transitions happen under
// run.mu.
type state uint8

const (
	stQueued   state = iota // received, waiting to start
	stRunning               // its handler is running
	stSettling              // outcome known; its acknowledgement is pending
)

// outcome is what is done with a message once its handler is done.
type outcome uint8

const (
	doDelete  outcome = iota // finished or dead-lettered: delete it
	doBackoff                // failed: give it back after a back-off
	doRelease                // give it back at once (visibility 0)
	doDrop                   // lease lost: nothing can be acknowledged
)

// delivery is one received message and its lease. Fields below Message are
// guarded by run.mu.
type delivery struct {
	Message
	receipt    string
	leaseStart time.Time // when the receive was sent: the lease counts from here
	deadline   time.Time // when the visibility timeout runs out
	nextExtend time.Time // when the heartbeat extends it (its heap key)
	index      int       // position in run.leases, -1 when not there
	extending  bool      // an extension call for it is in flight
	pending    func()    // its acknowledgement, held back until that call returns
	state      state
	lost       bool
	cancel     context.CancelCauseFunc // its handler's context, once started
	group      string                  // FIFO group key
}

// change is one visibility change: a back-off or a release.
type change struct {
	d   *delivery
	vis int32 // seconds
}

// run is the state of one Run call.
type run struct {
	c       *Consumer
	h       Handler
	cfg     Config
	log     zerolog.Logger
	warnLog zerolog.Logger // per-message warnings, rate-limited
	slots   *slots

	margin   time.Duration // extend this long before a lease runs out
	minBatch int           // a receiver waits for room for at least this many

	workCtx context.Context // parent of handler contexts
	stopCtx context.Context // cancelled when the stop begins (ends holds)
	stopped context.CancelFunc
	ackCtx  context.Context // deletes, dead-letter sends, visibility changes

	deletes *batcher[*delivery]
	changes *batcher[change]

	handlers sync.WaitGroup

	mu         sync.Mutex
	stopping   bool
	ready      []*delivery            // startable, in order
	groups     map[string][]*delivery // FIFO: group → its messages behind the one ready or running
	running    int
	live       int // received and not yet settled
	leases     leaseHeap
	idle       chan struct{} // closed once stopping and no handler runs
	idleClosed bool
	drained    chan struct{} // closed once stopping and nothing is live
	drainDone  bool
	hbWake     chan struct{}
	noGroup    bool // warned about FIFO messages without a group
}

func newRun(c *Consumer, h Handler) *run {
	cfg := c.cfg
	r := &run{
		c:        c,
		h:        h,
		cfg:      cfg,
		log:      c.log,
		warnLog:  c.log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second}),
		slots:    newSlots(cfg.MaxInFlight),
		margin:   cfg.VisibilityTimeout / 2,
		minBatch: min(MaxBatch, max(1, cfg.MaxInFlight/(2*cfg.Receivers))),
		groups:   map[string][]*delivery{},
		idle:     make(chan struct{}),
		drained:  make(chan struct{}),
		hbWake:   make(chan struct{}, 1),
	}
	r.stopCtx, r.stopped = context.WithCancel(context.Background())
	r.deletes = newBatcher(cfg.MaxInFlight, cfg.FlushInterval, r.flushDeletes)
	r.changes = newBatcher(cfg.MaxInFlight, cfg.FlushInterval, r.flushChanges)
	return r
}

// newDelivery reads an SQS message.
func newDelivery(m types.Message, leaseStart, now time.Time, vt time.Duration) *delivery {
	d := &delivery{
		Message: Message{
			ID:         aws.ToString(m.MessageId),
			Body:       aws.ToString(m.Body),
			ReceivedAt: now,
		},
		receipt:    aws.ToString(m.ReceiptHandle),
		leaseStart: leaseStart,
		deadline:   leaseStart.Add(vt),
		index:      -1,
	}
	if v, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
		d.ReceiveCount = v
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		d.SentAt = time.UnixMilli(ms)
	}
	d.GroupID = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
	d.group = d.GroupID
	for k, v := range m.MessageAttributes {
		if v.StringValue == nil {
			continue // binary
		}
		if d.Attributes == nil {
			d.Attributes = make(map[string]string, len(m.MessageAttributes))
		}
		d.Attributes[k] = *v.StringValue
	}
	return d
}

// accept takes the messages of one receive. After the stop they are
// released at once; otherwise they are queued and started as room allows.
func (r *run) accept(msgs []types.Message, leaseStart time.Time, afterStop bool) {
	now := time.Now()
	ds := make([]*delivery, len(msgs))
	for i, m := range msgs {
		ds[i] = newDelivery(m, leaseStart, now, r.cfg.VisibilityTimeout)
	}
	r.c.stats.received.Add(int64(len(ds)))
	r.c.stats.inFlight.Add(int64(len(ds)))
	if obs := r.cfg.Observer; obs != nil {
		for _, d := range ds {
			wait := time.Duration(0)
			if !d.SentAt.IsZero() {
				wait = max(d.ReceivedAt.Sub(d.SentAt), 0)
			}
			obs.MessageReceived(wait)
		}
	}

	var acts []func()
	r.mu.Lock()
	r.live += len(ds)
	if r.stopping || afterStop {
		for _, d := range ds {
			acts = append(acts, r.settleLocked(d, doRelease))
		}
	} else {
		for _, d := range ds {
			d.nextExtend = d.deadline.Add(-r.margin)
			heap.Push(&r.leases, d)
			r.enqueueLocked(d)
		}
		acts = append(acts, r.dispatchLocked()...)
	}
	r.mu.Unlock()
	runAll(acts)
	select {
	case r.hbWake <- struct{}{}:
	default:
	}
}

// enqueueLocked queues d: on a FIFO queue behind the messages of its group
// already here, otherwise (or if it is the group's first) as ready.
func (r *run) enqueueLocked(d *delivery) {
	if !r.cfg.FIFO {
		r.ready = append(r.ready, d)
		return
	}
	if d.GroupID == "" && !r.noGroup {
		r.noGroup = true
		r.log.Warn().Str("message_id", d.ID).
			Msg("FIFO message without MessageGroupId: such messages are handled one at a time")
	}
	if waiting, ok := r.groups[d.group]; ok {
		r.groups[d.group] = append(waiting, d)
		return
	}
	r.groups[d.group] = nil
	r.ready = append(r.ready, d)
}

// dispatchLocked starts ready messages while there is room.
func (r *run) dispatchLocked() (acts []func()) {
	for !r.stopping && r.running < r.cfg.Concurrency && len(r.ready) > 0 {
		d := r.ready[0]
		r.ready[0] = nil
		r.ready = r.ready[1:]
		if d.state != stQueued { // its lease was lost while it waited
			if r.cfg.FIFO {
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
	waiting, ok := r.groups[d.group]
	if !ok {
		return nil
	}
	if broken {
		delete(r.groups, d.group)
		for _, w := range waiting {
			if w.state == stQueued {
				acts = append(acts, r.settleLocked(w, doRelease))
			}
		}
		return acts
	}
	if len(waiting) == 0 {
		delete(r.groups, d.group)
		return nil
	}
	w := waiting[0]
	r.groups[d.group] = waiting[1:]
	if w.state != stQueued {
		// w's lease was lost while it waited: the order is broken after it.
		return r.advanceLocked(w, true)
	}
	r.ready = append(r.ready, w)
	return nil
}

// holdBackoffMax caps the wait between retries in place.
const holdBackoffMax = 30 * time.Second

// callHolding calls the handler for d, and again while it fails
// transiently and d may still be held (see Transient): d keeps its lease
// (the heartbeat extends it while it runs) and its FIFO group waits behind
// it, so an outage costs no receive and breaks no order.
func (r *run) callHolding(ctx context.Context, d *delivery) error {
	for attempt := 0; ; attempt++ {
		err := callHandler(ctx, r.h, &d.Message)
		var transient *TransientError
		if err == nil || !errors.As(err, &transient) || r.cfg.HoldFor < 0 || ctx.Err() != nil {
			return err
		}
		wait := jitter(expBackoff(r.cfg.HoldBackoff, holdBackoffMax, attempt))
		if time.Since(d.ReceivedAt)+wait > r.cfg.HoldFor {
			return err
		}
		if attempt == 0 {
			r.warnLog.Warn().Err(err).Str("message_id", d.ID).Int("receive_count", d.ReceiveCount).
				Msg("dependency failed: message held, to be retried here")
		}
		r.c.stats.held.Add(1)
		if !r.holdWait(ctx, wait) {
			return err
		}
	}
}

// holdWait waits wait, then for the Gate. It reports false if ctx ends or
// the stop begins first.
func (r *run) holdWait(ctx context.Context, wait time.Duration) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.stopCtx, cancel)()
	if !sleep(ctx, wait) {
		return false
	}
	if g := r.cfg.Gate; g != nil {
		return g.Wait(ctx) == nil
	}
	return true
}

// handle runs the handler for d and settles the outcome.
func (r *run) handle(ctx context.Context, d *delivery) {
	defer r.handlers.Done()
	start := time.Now()
	err := r.callHolding(ctx, d)
	cause := context.Cause(ctx)
	d.cancel(nil)

	o := doDelete
	var poison *PoisonError
	switch {
	case err == nil:
		r.c.stats.finished.Add(1)
	case errors.As(err, &poison) && r.isLost(d):
		// The worker that holds the lease now dead-letters it.
	case errors.As(err, &poison) && r.deadLetter(d, poison):
		// In the dead-letter queue: delete it.
	default:
		r.c.stats.failed.Add(1)
		if obs := r.cfg.Observer; obs != nil {
			obs.MessageFailed()
		}
		o = doBackoff
		var transient *TransientError
		if errors.Is(cause, ErrShutdownTimeout) || (errors.As(err, &transient) && r.stopCtx.Err() != nil) {
			o = doRelease // another worker can take it at once
		}
		if poison == nil { // a failed dead-letter send is logged where it failed
			r.warnLog.Warn().Err(err).Str("message_id", d.ID).Int("receive_count", d.ReceiveCount).
				Dur("duration", time.Since(start)).Msg("handler failed: message left for redelivery")
		}
	}

	r.mu.Lock()
	r.running--
	if d.lost {
		o = doDrop
	}
	acts := []func(){r.settleLocked(d, o)}
	if r.cfg.FIFO {
		acts = append(acts, r.advanceLocked(d, o != doDelete)...)
	}
	acts = append(acts, r.dispatchLocked()...)
	r.checkIdleLocked()
	r.mu.Unlock()
	runAll(acts)
}

func (r *run) isLost(d *delivery) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return d.lost
}

// callHandler calls h, turning a panic into that message's error.
func callHandler(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return h.Handle(ctx, m)
}

// panicError is a handler's panic, with its stack.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("handler panicked: %v\n%s", e.value, e.stack)
}

// settleLocked takes d out of the lease heartbeat and returns its
// acknowledgement, to be run after the lock is released. If an extension
// call for d is in flight, the acknowledgement waits for it (the heartbeat
// runs it), so an extension never races a delete or a release.
func (r *run) settleLocked(d *delivery, o outcome) func() {
	d.state = stSettling
	if d.index >= 0 {
		heap.Remove(&r.leases, d.index)
	}
	var act func()
	switch o {
	case doDelete:
		act = func() {
			if !r.deletes.add(d) {
				r.abandon(d, "delete")
			}
		}
	case doBackoff:
		if r.cfg.RetryBackoff < 0 {
			act = func() { r.done(d) }
			break
		}
		vis := failureVisibility(r.cfg, d.ReceiveCount, MaxVisibility-time.Since(d.leaseStart))
		act = func() {
			if !r.changes.add(change{d, vis}) {
				r.abandon(d, "back-off")
			}
		}
	case doRelease:
		act = func() {
			if !r.changes.add(change{d, 0}) {
				r.abandon(d, "release")
			}
		}
	default:
		act = func() { r.done(d) }
	}
	if d.extending {
		d.pending = act
		return nil
	}
	return act
}

// abandon settles d whose acknowledgement came after Run's end (its handler
// ignored cancellation): it comes back after its visibility timeout.
func (r *run) abandon(d *delivery, what string) {
	r.c.stats.ackErrors.Add(1)
	r.warnLog.Warn().Str("message_id", d.ID).Str("ack", what).
		Msg("acknowledgement after the consumer stopped: message comes back after its visibility timeout")
	r.done(d)
}

// done ends d's life: its slot is free again.
func (r *run) done(d *delivery) {
	r.mu.Lock()
	r.live--
	r.checkDrainedLocked()
	r.mu.Unlock()
	r.c.stats.inFlight.Add(-1)
	r.slots.release(1)
}

// stop begins the drain: nothing starts any more, and every queued message
// is released at once.
func (r *run) stop() {
	var acts []func()
	r.stopped()
	r.mu.Lock()
	r.stopping = true
	for _, d := range r.ready {
		if d.state == stQueued {
			acts = append(acts, r.settleLocked(d, doRelease))
		}
	}
	r.ready = nil
	for g, waiting := range r.groups {
		for _, d := range waiting {
			if d.state == stQueued {
				acts = append(acts, r.settleLocked(d, doRelease))
			}
		}
		r.groups[g] = nil
	}
	r.checkIdleLocked()
	r.checkDrainedLocked()
	r.mu.Unlock()
	runAll(acts)
}

func (r *run) checkIdleLocked() {
	if r.stopping && r.running == 0 && !r.idleClosed {
		r.idleClosed = true
		close(r.idle)
	}
}

func (r *run) checkDrainedLocked() {
	if r.stopping && r.live == 0 && !r.drainDone {
		r.drainDone = true
		close(r.drained)
	}
}

func (r *run) runningCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

func (r *run) liveCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

// runAll runs the deferred actions, skipping nil ones.
func runAll(acts []func()) {
	for _, a := range acts {
		if a != nil {
			a()
		}
	}
}

// attrText makes s fit for an SQS message attribute value: valid UTF-8 of
// the characters SQS allows, at most limit bytes (cut at a rune boundary,
// marked with "…").
func attrText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	i := max(limit-len(ellipsis), 0)
	for i > 0 && !isRuneStart(s[i]) {
		i--
	}
	return s[:i] + ellipsis
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
