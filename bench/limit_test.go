package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/store"
)

// The limits the worker passes to the store at its defaults (HISTORY_LIMIT
// 10, RELEVANCE_LIMIT 20): both roles' history in one search and one more,
// because the event itself may already be stored, and enough relevant ones
// to keep RELEVANCE_LIMIT after those in history are dropped. The seed's
// designs (designs_test.go) ask for v2's: one role at a time, 5 relevant.
const (
	historyLimit     = 2*pipeline.DefaultHistoryLimit + 1
	relevanceLimit   = pipeline.DefaultRelevanceLimit + 2*pipeline.DefaultHistoryLimit + 1
	v2HistoryLimit   = pipeline.DefaultHistoryLimit + 1
	v2RelevanceLimit = 5 + 2*pipeline.DefaultHistoryLimit + 1
)

// callKind is one kind of Weaviate call the worker makes per event.
type callKind struct {
	name string
	do   func(ctx context.Context, st *store.Store, ev event.Event) error
}

// workerCalls are exactly the Weaviate calls the worker makes for one user
// event, through the same store package (gRPC searches, the REST muted
// lookup by id, batched writes shared across callers).
var workerCalls = []callKind{
	{"history", func(ctx context.Context, st *store.Store, ev event.Event) error {
		_, err := st.Recent(ctx, ev.ChatID, ev.SentAt, historyLimit)
		return err
	}},
	{"relevance and neighbours", func(ctx context.Context, st *store.Store, ev event.Event) error {
		hits, err := st.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, relevanceLimit)
		if err == nil && len(hits) > 0 {
			_, err = st.Following(ctx, ev.ChatID, hits, pipeline.DefaultNeighbours)
		}
		return err
	}},
	{"references", func(ctx context.Context, st *store.Store, ev event.Event) error {
		_, err := st.References(ctx, ev.ChatID, ev.SentAt, pipeline.DefaultReferencesLimit)
		return err
	}},
	{"muted", func(ctx context.Context, st *store.Store, ev event.Event) error {
		_, err := st.Muted(ctx, ev.ChatID, ev.SentAt)
		return err
	}},
	{"store", func(ctx context.Context, st *store.Store, ev event.Event) error { return st.Put(ctx, ev) }},
}

// workerMix is one event's worth of the worker's Weaviate work: its calls
// at once, as the pipeline makes them.
func workerMix(ctx context.Context, st *store.Store, ev event.Event) error {
	errs := make([]error, len(workerCalls))
	var wg sync.WaitGroup
	for i, c := range workerCalls {
		wg.Go(func() { errs[i] = c.do(ctx, st, ev) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", workerCalls[i].name, err)
		}
	}
	return nil
}

// limitResult is one closed-loop run straight at Weaviate.
type limitResult struct {
	label       string // the call kind, or "" for the whole mix
	concurrency int
	n           int
	elapsed     time.Duration
	weaviate    time.Duration // Weaviate's CPU
	harness     time.Duration // this process's CPU: the generator's store client
	busy, all   time.Duration
	calls       store.Stats
}

func (l limitResult) eventsPerSec() float64 { return float64(l.n) / l.elapsed.Seconds() }

func (l limitResult) weaviatePerEvent() time.Duration { return l.weaviate / time.Duration(max(1, l.n)) }

// closedLoop runs concurrency loops, each doing mix for the next event
// until the events run out or the slice of time (if not 0) is over.
func closedLoop(ctx context.Context, p *phase, events []workload.Event, concurrency int, slice time.Duration,
	mix func(context.Context, *store.Store, event.Event) error) (limitResult, error) {
	res := limitResult{concurrency: concurrency}
	before := p.store.Stats()
	cpu0 := sampleCPU(p.stack.Weaviate.Pid())
	var deadline time.Time
	if slice > 0 {
		deadline = cpu0.at.Add(slice)
	}
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(events) || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				if err := mix(ctx, p.store, events[i].Event); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("event %s: %w", events[i].EventID, err) })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	cpu1 := sampleCPU(p.stack.Weaviate.Pid())
	res.n = int(done.Load())
	res.elapsed = cpu1.at.Sub(cpu0.at)
	res.weaviate, res.harness = cpu1.pid-cpu0.pid, cpu1.self-cpu0.self
	res.busy, res.all = cpu1.busy-cpu0.busy, cpu1.total-cpu0.total
	after := p.store.Stats()
	res.calls = store.Stats{
		History: after.History - before.History, Relevant: after.Relevant - before.Relevant,
		Muted: after.Muted - before.Muted, Batches: after.Batches - before.Batches,
		Objects: after.Objects - before.Objects, Failed: after.Failed - before.Failed,
	}
	return res, firstErr
}

// sweep runs the whole mix at each concurrency level for slice, each level
// on events of its own, and returns the warm-up, the levels and the best.
// It goes on to the next level only while the previous one gained (at least
// 5%): past the knee Weaviate is saturated and more loops only queue.
//
// The first slice of writes and BM25 searches after the seed settled runs
// at a fraction of the speed of the next (measured, 2 s slices at 4 loops:
// 39 events/s at 46 ms of Weaviate CPU each, then 367 at 4.6 ms): it runs
// at the first level first, as a warm-up, and is reported apart.
func sweep(ctx context.Context, p *phase, events []workload.Event, levels []int, slice time.Duration) (warm limitResult, out []limitResult, best limitResult, err error) {
	warm, err = closedLoop(ctx, p, events, levels[0], slice, workerMix)
	if err != nil {
		return warm, out, best, err
	}
	events = events[warm.n:]
	for _, c := range levels {
		r, err := closedLoop(ctx, p, events, c, slice, workerMix)
		if err != nil {
			return warm, out, best, err
		}
		events = events[r.n:]
		out = append(out, r)
		gained := best.n == 0 || r.eventsPerSec() > 1.05*best.eventsPerSec()
		if best.n == 0 || r.eventsPerSec() > best.eventsPerSec() {
			best = r
		}
		if !gained {
			break
		}
	}
	return warm, out, best, nil
}

// perKind runs each call kind alone, in closed loops, for slice, each over
// the same events from the first: what one call of each kind costs Weaviate.
func perKind(ctx context.Context, p *phase, events []workload.Event, concurrency int, slice time.Duration) ([]limitResult, error) {
	var out []limitResult
	for _, k := range workerCalls {
		r, err := closedLoop(ctx, p, events, concurrency, slice, k.do)
		if err != nil {
			return out, err
		}
		r.label = k.name
		out = append(out, r)
	}
	return out, nil
}

// settle waits until Weaviate has finished what it was doing (flushing the
// memtables of what was written, compacting): its CPU below a twentieth of
// a core for settleQuiet in a row, at most settleMax. The quiet spell must
// outlast the memtables' flush-after-dirty time (5 s in the devstack's
// Weaviate): a Weaviate idle for less may still be about to flush. It
// returns how long that took, so the report can say so.
func settle(ctx context.Context, pid int) time.Duration {
	const (
		window      = 500 * time.Millisecond
		settleQuiet = 7 * time.Second
		settleMax   = 90 * time.Second
	)
	start := time.Now()
	quiet := time.Duration(0)
	for quiet < settleQuiet && time.Since(start) < settleMax {
		before := procCPU(pid)
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(window):
		}
		if procCPU(pid)-before < window/20 {
			quiet += window
		} else {
			quiet = 0
		}
	}
	return time.Since(start)
}
