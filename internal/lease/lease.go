// Package lease keeps received SQS messages invisible while they are worked
// on. A message's visibility timeout is a lease: a Lease owns the message's
// receipt handle and the deadline its visibility runs out at, and one
// Keeper, the heartbeat, extends every lease it holds a little before its
// deadline (ChangeMessageVisibilityBatch for all that are due about
// together), never past SQS's 12-hour cap.
//
// A lease ends in one of two ways. Its owner ends it (End) to delete or
// release the message: from then on it is not extended, and if an extension
// of it is in flight the owner's action waits for that call's answer, so an
// extension never races a delete. Or it is lost: its receipt handle was
// refused, or it could not be extended before its deadline. Then the
// owner's onLost runs once (the consumer cancels the message's handler),
// and End reports the loss: nothing may be acknowledged with that handle,
// another worker may have the message.
package lease

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// MaxVisibility is SQS's cap on a message's visibility, counted from its
// receipt; no extension goes past it.
const MaxVisibility = 12 * time.Hour

// Extender is the call the keeper makes (sqsbatch.Receipts implements it).
type Extender interface {
	ChangeVisibility(ctx context.Context, changes []sqsbatch.Visibility) []error
}

// Config configures a Keeper.
type Config struct {
	// VisibilityTimeout is the length of each extension. Required, whole
	// seconds.
	VisibilityTimeout time.Duration
	// Margin is how long before its deadline a lease is extended. Default
	// VisibilityTimeout/2.
	Margin time.Duration
	// Logger receives a line per slow or failed extension call (give it a
	// rate-limited one); lost leases are reported to their owners. The zero
	// Logger discards.
	Logger zerolog.Logger
}

type state uint8

const (
	held state = iota
	ended
	lost
)

// Lease is one message's hold on its visibility. Its fields are guarded by
// its Keeper's lock.
type Lease struct {
	receipt string
	start   time.Time // when the visibility timeout began: the 12-hour cap counts from here
	onLost  func(reason string)

	deadline  time.Time // when the visibility runs out
	next      time.Time // when to extend it (its heap key)
	index     int       // in Keeper.heap, -1 when not there
	extending bool      // an extension call for it is in flight
	then      func()    // the owner's action, held back until that call returns
	state     state
}

// Receipt is the message's receipt handle.
func (l *Lease) Receipt() string { return l.receipt }

// Start is when the message's visibility timeout began.
func (l *Lease) Start() time.Time { return l.start }

// Keeper is the heartbeat over a set of leases. Create it with New, Hold a
// lease per received message, and Run it while messages are held.
type Keeper struct {
	ext    Extender
	vt     time.Duration
	margin time.Duration
	log    zerolog.Logger

	mu   sync.Mutex
	heap leaseHeap
	wake chan struct{}

	extended, lostCount atomic.Int64
}

// New returns a Keeper that extends leases through ext.
func New(ext Extender, cfg Config) (*Keeper, error) {
	if cfg.VisibilityTimeout < time.Second || cfg.VisibilityTimeout%time.Second != 0 {
		return nil, errors.New("lease: VisibilityTimeout must be whole seconds, at least 1s")
	}
	if cfg.Margin <= 0 || cfg.Margin >= cfg.VisibilityTimeout {
		cfg.Margin = cfg.VisibilityTimeout / 2
	}
	return &Keeper{ext: ext, vt: cfg.VisibilityTimeout, margin: cfg.Margin, log: cfg.Logger, wake: make(chan struct{}, 1)}, nil
}

// Stats counts the keeper's work.
type Stats struct {
	Extended int64 // extensions SQS accepted
	Lost     int64 // leases lost
}

// Stats returns the counters.
func (k *Keeper) Stats() Stats {
	return Stats{Extended: k.extended.Load(), Lost: k.lostCount.Load()}
}

// Hold starts keeping the lease of a message received with receipt, whose
// visibility timeout (of the keeper's length) began at start. onLost, if
// not nil, runs once if the lease is lost, with the reason, on the keeper's
// goroutine and with no lock held.
func (k *Keeper) Hold(receipt string, start time.Time, onLost func(reason string)) *Lease {
	l := &Lease{receipt: receipt, start: start, onLost: onLost, deadline: start.Add(k.vt), index: -1}
	l.next = l.deadline.Add(-k.margin)
	k.mu.Lock()
	heap.Push(&k.heap, l)
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
	return l
}

// End stops keeping l and runs then: at once, or, when an extension of l
// is in flight, once that call has returned. It reports false, and does
// not run then, if the lease was lost (or already ended).
func (k *Keeper) End(l *Lease, then func()) bool {
	k.mu.Lock()
	if l.state != held {
		k.mu.Unlock()
		return false
	}
	l.state = ended
	if l.index >= 0 {
		heap.Remove(&k.heap, l.index)
	}
	if l.extending {
		l.then = then
		k.mu.Unlock()
		return true
	}
	k.mu.Unlock()
	if then != nil {
		then()
	}
	return true
}

// Remaining is how much of SQS's 12-hour cap l has left at now.
func (l *Lease) Remaining(now time.Time) time.Duration {
	return MaxVisibility - now.Sub(l.start)
}

// Run extends the held leases until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, wait := k.due(time.Now())
		if len(due) > 0 {
			k.extend(ctx, due)
			continue
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// extension is one lease about to be extended by vis.
type extension struct {
	l   *Lease
	vis time.Duration
}

// due takes the leases to extend now out of the heap: those due, and with
// them those due within margin/2, so neighbours share a call. Leases whose
// deadline passed are lost. It returns how long to wait for the next due
// lease (-1: none).
func (k *Keeper) due(now time.Time) ([]extension, time.Duration) {
	var (
		out    []extension
		losses []*Lease
		keep   []*Lease
		batch  = now.Add(k.margin / 2)
	)
	k.mu.Lock()
	if len(k.heap) == 0 || k.heap[0].next.After(now) {
		wait := time.Duration(-1)
		if len(k.heap) > 0 {
			wait = k.heap[0].next.Sub(now)
		}
		k.mu.Unlock()
		return nil, wait
	}
	for len(k.heap) > 0 && !k.heap[0].next.After(batch) {
		l := heap.Pop(&k.heap).(*Lease)
		if !now.Before(l.deadline) {
			l.state = lost
			losses = append(losses, l)
			continue
		}
		vis := min(k.vt, l.Remaining(now)).Truncate(time.Second)
		if vis < time.Second { // at the 12-hour cap: it runs out at its deadline
			l.next = l.deadline
			keep = append(keep, l)
			continue
		}
		l.extending = true
		out = append(out, extension{l, vis})
	}
	for _, l := range keep {
		heap.Push(&k.heap, l)
	}
	k.mu.Unlock()
	for _, l := range losses {
		k.lose(l, "not extended before its visibility timeout ran out")
	}
	return out, 0
}

// extend makes the extension calls and applies the answers: a new
// deadline, a lost lease, or a retry soon (never after the deadline). An
// owner's action held back during the call runs now.
func (k *Keeper) extend(ctx context.Context, due []extension) {
	changes := make([]sqsbatch.Visibility, len(due))
	first := due[0].l.deadline
	for i, e := range due {
		changes[i] = sqsbatch.Visibility{Receipt: e.l.receipt, Timeout: e.vis}
		if e.l.deadline.Before(first) {
			first = e.l.deadline
		}
	}
	start := time.Now()
	// Retrying past the first deadline would not save that lease; the
	// others are retried by the heartbeat soon after.
	cctx, cancel := context.WithDeadline(ctx, first)
	errs := k.ext.ChangeVisibility(cctx, changes)
	cancel()
	if took := time.Since(start); took > k.margin/2 {
		k.log.Warn().Float64("took_ms", ms(took)).Int("messages", len(due)).Float64("margin_ms", ms(k.margin)).
			Msg("lease extension slow: leases may run out before the next one")
	}

	retryIn := min(time.Second, k.margin/4)
	now := time.Now()
	var (
		thens  []func()
		losses []*Lease
		why    []string
		failed error
	)
	k.mu.Lock()
	for i, e := range due {
		l := e.l
		l.extending = false
		if l.state == ended { // ended during the call
			if l.then != nil {
				thens = append(thens, l.then)
				l.then = nil
			}
			continue
		}
		// Only SQS refusing this receipt handle loses the lease now. A
		// call that failed (even for good: expired credentials, access
		// denied) judged no entry: the lease is retried until its deadline.
		var re interface{ Refused() bool }
		switch err := errs[i]; {
		case err == nil:
			k.extended.Add(1)
			l.deadline = start.Add(e.vis)
			l.next = l.deadline.Add(-k.margin)
		case errors.As(err, &re) && re.Refused():
			l.state = lost
			losses, why = append(losses, l), append(why, "receipt handle refused: "+err.Error())
			continue
		default:
			failed = err
			l.next = now.Add(retryIn)
			if l.next.After(l.deadline) {
				l.next = l.deadline
			}
		}
		heap.Push(&k.heap, l)
	}
	k.mu.Unlock()
	if failed != nil && ctx.Err() == nil {
		k.log.Warn().Err(failed).Int("messages", len(due)).Msg("lease extension failed; retrying")
	}
	for _, then := range thens {
		then()
	}
	for i, l := range losses {
		k.lose(l, why[i])
	}
}

// lose reports a lease lost (its state is already lost) to its owner, who
// knows which message it was and logs it.
func (k *Keeper) lose(l *Lease, reason string) {
	k.lostCount.Add(1)
	if l.onLost != nil {
		l.onLost(reason)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// leaseHeap orders leases by when they must be extended.
type leaseHeap []*Lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*Lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	n := len(old) - 1
	l := old[n]
	old[n] = nil
	l.index = -1
	*h = old[:n]
	return l
}
