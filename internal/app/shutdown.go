package app

import (
	"context"
	"time"
)

// Fixed slices of the shutdown budget, after SHUTDOWN_TIMEOUT.
const (
	// AckTimeout bounds, after SHUTDOWN_TIMEOUT, the wait for handlers the
	// bound cancelled and for the consumer's last deletes and releases.
	AckTimeout = 3 * time.Second
	// CloseTimeout bounds what the publisher and the pool still hold once
	// the consumer is done (normally nothing: every result was published
	// inside its handler).
	CloseTimeout = 2 * time.Second
	// FlushTimeout bounds the last PutMetricData calls (and the last trace
	// export), made once nothing records any more.
	FlushTimeout = 3 * time.Second
)

// Shutdown is the one shutdown deadline, derived from SHUTDOWN_TIMEOUT and
// split among the stages that need it, in order from SIGTERM (the table is
// Worker.stages):
//
//	Drain  running handlers finish (and a long poll in flight returns)
//	Acks   handlers cut off by Drain return; the last deletes and releases
//	Close  the publisher and the pool finish what they hold
//	Flush  the last metrics (and traces) go out
//
// Each stage ends at its own offset from SIGTERM, whatever the stages before
// it took, so the worker exits by Total at the latest: ECS's stopTimeout
// must be above it (deploy/ecs/task-definition.json is checked by a test).
type Shutdown struct {
	Drain, Acks, Close, Flush time.Duration
}

// ShutdownBudget is the budget for SHUTDOWN_TIMEOUT d.
func ShutdownBudget(d time.Duration) Shutdown {
	return Shutdown{Drain: max(d, 0), Acks: AckTimeout, Close: CloseTimeout, Flush: FlushTimeout}
}

// Total is the longest a worker takes from SIGTERM to its exit.
func (s Shutdown) Total() time.Duration { return s.Drain + s.Acks + s.Close + s.Flush }

// stage is one stage of the shutdown: its slice of the budget and what
// it does, step by step.
type stage struct {
	name  string
	slice time.Duration
	// steps run in order on the stage's context; nil for the stages the
	// consumer runs itself (its Run returns once they are over).
	steps []step
}

// step is one thing a stage does; warn is logged with its error.
type step struct {
	warn string
	run  func(ctx context.Context) error
}

// stages is the shutdown, in order: the budget's four slices and what
// each does. stopMetrics ends the metrics aggregator's Run, which then
// sends what it holds within Flush; metricsDone is closed when it has.
func (w *Worker) stages(stopMetrics func(), metricsDone <-chan struct{}) []stage {
	return []stage{
		// The consumer: no new poll; running handlers finish and the poll in
		// flight returns; what is left is released.
		{name: "drain", slice: w.budget.Drain},
		// The consumer: handlers the drain cut off return; the last deletes
		// and releases go out.
		{name: "acks", slice: w.budget.Acks},
		{name: "close", slice: w.budget.Close, steps: []step{
			{"publisher did not flush everything", w.pub.Close},
			{"pool did not finish its tasks", w.tasks.Close},
			{"", func(context.Context) error { w.closeStore(); return nil }},
		}},
		// The last PutMetricData and the last trace export, side by side;
		// then the health endpoint closes.
		{name: "flush", slice: w.budget.Flush, steps: []step{
			{"", func(context.Context) error { stopMetrics(); return nil }},
			{"traces not all exported", w.traces.Shutdown},
			{"", func(ctx context.Context) error {
				select {
				case <-metricsDone:
				case <-ctx.Done():
				}
				return nil
			}},
			{"", w.hs.Shutdown},
		}},
	}
}

// shutdown runs the stages after the stop (SIGTERM at stop), in order.
// Each stage gets at most its slice from its start and never runs past its
// end counted from the stop (the sum of the slices up to it), whatever the
// stages before it took: the worker is gone by stop + Total. A failed step
// is logged and the next one runs.
func (w *Worker) shutdown(ctx context.Context, stop time.Time, stages []stage) {
	var end time.Duration
	for _, s := range stages {
		end += s.slice
		if len(s.steps) == 0 {
			continue
		}
		deadline := time.Now().Add(s.slice)
		if by := stop.Add(end); by.Before(deadline) {
			deadline = by
		}
		sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		for _, st := range s.steps {
			if err := st.run(sctx); err != nil && st.warn != "" {
				w.log.Warn().Err(err).Str("stage", s.name).Msg(st.warn)
			}
		}
		cancel()
	}
}

// closeStore closes the Weaviate store (not a store given in Options):
// the objects its batcher holds are sent first.
func (w *Worker) closeStore() {
	if w.weaviate != nil {
		w.weaviate.Close()
	}
}
