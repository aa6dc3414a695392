package app

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/breaker"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/store"
)

// checker is a store that can tell whether Weaviate can serve the worker at
// all (store.Store.Check): the breaker's half-open check.
type checker interface {
	Check(ctx context.Context) error
}

// newBreaker is the circuit breaker around the store st: it counts
// Weaviate's faults (store.IsFault: outages, and lasting faults, one of
// which opens it at once: a refused API key, a read-only shard), checks
// with st's Check before it lets a probe through (when st has one), and
// tells agg how long each paused period lasted (WeaviatePausedDuration).
func newBreaker(st any, agg *metrics.Aggregator, log zerolog.Logger) (*breaker.Breaker, error) {
	cfg := breaker.Config{
		Name: "weaviate", IsFailure: store.IsFault, Lasting: store.IsLasting, Logger: log,
		Paused: func(d time.Duration) { agg.Duration(metrics.WeaviatePausedDuration, "", d) },
	}
	if c, ok := st.(checker); ok {
		cfg.Check = c.Check
	}
	return breaker.New(cfg)
}

// breakerDetail is the breaker's part of the /readyz body (and of
// /debug/vars): its state as "breaker", and while it is not closed, why:
// "breaker_cause" (the kind of failure, never Weaviate's own text, which can
// quote a query), "breaker_reason" (what opened it), "breaker_since" and,
// while open, "breaker_until".
func breakerDetail(b *breaker.Breaker) map[string]any {
	st := b.Status()
	d := map[string]any{"breaker": st.State.String()}
	if st.State == breaker.Closed {
		return d
	}
	cause := "unknown"
	if k := store.KindOf(st.Cause); k != 0 {
		cause = k.String()
	} else if st.Cause != nil {
		cause = st.Cause.Error()
	}
	d["breaker_cause"] = cause
	d["breaker_reason"] = st.Reason
	d["breaker_since"] = st.Since.UTC().Format(time.RFC3339Nano)
	if !st.Until.IsZero() {
		d["breaker_until"] = st.Until.UTC().Format(time.RFC3339Nano)
	}
	return d
}

// GuardStore returns s with every call made through b: while Weaviate keeps
// failing, calls fail fast with a *breaker.OpenError (and b, as the
// consumer's gate, pauses receiving); once a probe succeeds they go through
// again. A muted chat's cancelled history queries are cancellations by the
// caller and do not count as failures; TASK_TIMEOUT timeouts do.
//
// Which errors count is b's Config.IsFailure; the wiring counts only
// Weaviate's own trouble (store.IsFault, see newBreaker), not a request
// Weaviate rejected.
func GuardStore(s pipeline.Store, b *breaker.Breaker) pipeline.Store { return guarded{s: s, b: b} }

type guarded struct {
	s pipeline.Store
	b *breaker.Breaker
}

var _ pipeline.Store = guarded{}

func (g guarded) Recent(ctx context.Context, chatID string, before time.Time, limit int) ([]event.ContextMessage, error) {
	return breaker.Call(ctx, g.b, func(ctx context.Context) ([]event.ContextMessage, error) {
		return g.s.Recent(ctx, chatID, before, limit)
	})
}

func (g guarded) Following(ctx context.Context, chatID string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
	return breaker.Call(ctx, g.b, func(ctx context.Context) (map[string][]event.ContextMessage, error) {
		return g.s.Following(ctx, chatID, hits, n)
	})
}

func (g guarded) References(ctx context.Context, chatID string, before time.Time, limit int) ([]event.Reference, error) {
	return breaker.Call(ctx, g.b, func(ctx context.Context) ([]event.Reference, error) {
		return g.s.References(ctx, chatID, before, limit)
	})
}

func (g guarded) Relevant(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error) {
	return breaker.Call(ctx, g.b, func(ctx context.Context) ([]event.ContextMessage, error) {
		return g.s.Relevant(ctx, chatID, text, before, limit)
	})
}

func (g guarded) Muted(ctx context.Context, chatID string, at time.Time) (bool, error) {
	return breaker.Call(ctx, g.b, func(ctx context.Context) (bool, error) {
		return g.s.Muted(ctx, chatID, at)
	})
}

func (g guarded) Put(ctx context.Context, ev event.Event) error {
	return g.b.Do(ctx, func(ctx context.Context) error { return g.s.Put(ctx, ev) })
}

func (g guarded) SetMuted(ctx context.Context, ev event.Event) error {
	return g.b.Do(ctx, func(ctx context.Context) error { return g.s.SetMuted(ctx, ev) })
}
