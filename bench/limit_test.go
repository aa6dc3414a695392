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
// 10, RELEVANCE_LIMIT 5): one more history message per role than shown,
// because the event itself may already be stored, and enough relevant ones
// to keep five after those in history are dropped.
const (
	historyLimit   = pipeline.DefaultHistoryLimit + 1
	relevanceLimit = pipeline.DefaultRelevanceLimit + 2*pipeline.DefaultHistoryLimit + 1
)

// naiveMix is one event's worth of Weaviate work as the old designs do it:
// the two history reads, the relevance search, the muted lookup and the
// store, one call each.
func naiveMix(ctx context.Context, st pipeline.Store, ev event.Event) error {
	if _, err := st.History(ctx, ev.ChatID, event.RoleUser, ev.SentAt, historyLimit); err != nil {
		return err
	}
	if _, err := st.History(ctx, ev.ChatID, event.RoleAssistant, ev.SentAt, historyLimit); err != nil {
		return err
	}
	if _, err := st.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, relevanceLimit); err != nil {
		return err
	}
	if _, err := st.Muted(ctx, ev.ChatID, ev.SentAt); err != nil {
		return err
	}
	return st.Put(ctx, ev)
}

// limitResult is one closed-loop run straight at Weaviate.
type limitResult struct {
	concurrency int
	n           int
	elapsed     time.Duration
	weaviate    time.Duration // Weaviate's CPU
	harness     time.Duration // this process's CPU: the generator's store client
	busy, all   time.Duration
	calls       store.Stats
}

func (l limitResult) eventsPerSec() float64 { return float64(l.n) / l.elapsed.Seconds() }

// closedLoop runs concurrency loops, each doing naiveMix for the next event
// until the events run out or the slice of time (if not 0) is over.
func closedLoop(ctx context.Context, p *phase, events []workload.Event, concurrency int, slice time.Duration) (limitResult, error) {
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
				if err := naiveMix(ctx, p.store, events[i].Event); err != nil {
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
