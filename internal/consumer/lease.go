package consumer

import (
	"container/heap"
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// leaseHeap orders the in-flight messages by when their lease must be
// extended (a little before it runs out).
type leaseHeap []*delivery

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].nextExtend.Before(h[j].nextExtend) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *leaseHeap) Push(x any) {
	d := x.(*delivery)
	d.index = len(*h)
	*h = append(*h, d)
}
func (h *leaseHeap) Pop() any {
	old := *h
	n := len(old) - 1
	d := old[n]
	old[n] = nil
	d.index = -1
	*h = old[:n]
	return d
}

// extension is one lease the heartbeat is about to extend.
type extension struct {
	d   *delivery
	vis int32 // seconds
}

// heartbeat keeps the leases of all in-flight messages (queued and
// running): a little before a message's visibility timeout runs out it is
// extended by VisibilityTimeout, never past SQS's 12-hour cap. Leases due
// about together go in one ChangeMessageVisibilityBatch. A lease that cannot
// be extended in time, or whose receipt handle is refused, is lost.
func (r *run) heartbeat(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, wait := r.dueLeases(time.Now())
		if len(due) > 0 {
			r.extend(ctx, due)
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
		case <-r.hbWake:
		case <-tick:
		}
		timer.Stop()
	}
}

// dueLeases takes out of the heap the leases to extend now: those due, and
// with them those due within margin/2, so neighbours share a call. It marks
// lost those whose deadline passed and returns how long to wait for the
// next due lease (-1: none).
func (r *run) dueLeases(now time.Time) ([]extension, time.Duration) {
	var (
		due   []extension
		acts  []func()
		keep  []*delivery
		batch = now.Add(r.margin / 2)
	)
	r.mu.Lock()
	if len(r.leases) == 0 || r.leases[0].nextExtend.After(now) {
		wait := time.Duration(-1)
		if len(r.leases) > 0 {
			wait = r.leases[0].nextExtend.Sub(now)
		}
		r.mu.Unlock()
		return nil, wait
	}
	for len(r.leases) > 0 && !r.leases[0].nextExtend.After(batch) {
		d := heap.Pop(&r.leases).(*delivery)
		if !now.Before(d.deadline) {
			acts = append(acts, r.loseLocked(d, "not extended before its visibility timeout ran out"))
			continue
		}
		vis := min(r.cfg.VisibilityTimeout, MaxVisibility-now.Sub(d.leaseStart)) / time.Second
		if vis < 1 { // at the 12-hour cap: it runs out at its deadline
			d.nextExtend = d.deadline
			keep = append(keep, d)
			continue
		}
		d.extending = true
		due = append(due, extension{d, int32(vis)})
	}
	for _, d := range keep {
		heap.Push(&r.leases, d)
	}
	r.mu.Unlock()
	runAll(acts)
	return due, 0
}

// extend sends the extensions, MaxBatch per call, and applies the answers.
func (r *run) extend(ctx context.Context, due []extension) {
	for len(due) > 0 {
		n := min(len(due), MaxBatch)
		chunk := due[:n]
		due = due[n:]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, n)
		for i, e := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(e.d.receipt), VisibilityTimeout: e.vis,
			}
		}
		start := time.Now()
		out, err := r.c.changeBatch(ctx, entries)
		ok := make([]bool, n)
		fatal := make([]string, n)
		if err == nil {
			for _, s := range out.Successful {
				if i := batchIndex(s.Id, n); i >= 0 {
					ok[i] = true
				}
			}
			for _, f := range out.Failed {
				if i := batchIndex(f.Id, n); i >= 0 && entryFatal(f) {
					fatal[i] = aws.ToString(f.Code)
				}
			}
		} else if ctx.Err() == nil {
			r.warnLog.Warn().Err(err).Int("messages", n).Msg("lease extension failed; retrying")
		}
		if took := time.Since(start); took > r.margin/2 {
			r.warnLog.Warn().Dur("took", took).Int("messages", n).Dur("margin", r.margin).
				Msg("lease extension slow: leases may run out before the next one")
		}
		r.applyExtensions(chunk, start, ok, fatal)
	}
}

// applyExtensions records the answer of one extension call: a new deadline,
// a lost lease, or a retry soon (never after the deadline). An
// acknowledgement held back during the call runs now.
func (r *run) applyExtensions(chunk []extension, start time.Time, ok []bool, fatal []string) {
	retryIn := min(time.Second, r.margin/4)
	now := time.Now()
	var acts []func()
	r.mu.Lock()
	for i, e := range chunk {
		d := e.d
		d.extending = false
		if d.pending != nil { // settled during the call
			acts = append(acts, d.pending)
			d.pending = nil
			continue
		}
		switch {
		case ok[i]:
			r.c.stats.extended.Add(1)
			d.deadline = start.Add(time.Duration(e.vis) * time.Second)
			d.nextExtend = d.deadline.Add(-r.margin)
		case fatal[i] != "":
			acts = append(acts, r.loseLocked(d, "receipt handle refused: "+fatal[i]))
			continue
		default:
			d.nextExtend = now.Add(retryIn)
			if d.nextExtend.After(d.deadline) {
				d.nextExtend = d.deadline
			}
		}
		heap.Push(&r.leases, d)
	}
	r.mu.Unlock()
	runAll(acts)
}

// loseLocked marks d's lease lost. A waiting message is dropped (SQS gives
// it to someone else); a running handler's context is cancelled with
// ErrLeaseLost so it cannot publish a result another worker will publish
// too. Nothing is deleted.
func (r *run) loseLocked(d *delivery, why string) func() {
	if d.lost || d.state == stSettling {
		return nil
	}
	d.lost = true
	r.c.stats.leasesLost.Add(1)
	r.warnLog.Warn().Str("message_id", d.ID).Str("reason", why).
		Dur("since_receipt", time.Since(d.ReceivedAt)).Dur("lease_held", d.deadline.Sub(d.leaseStart)).
		Msg("message lease lost")
	switch d.state {
	case stQueued:
		return r.settleLocked(d, doDrop)
	case stRunning:
		d.cancel(ErrLeaseLost)
	}
	return nil
}
