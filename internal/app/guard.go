package app

import (
	"context"
	"time"

	"github.com/chatprep/chatprep/internal/breaker"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
)

// GuardStore returns s with every call made through b: while Weaviate keeps
// failing, calls fail fast with a *breaker.OpenError (and b, as the
// consumer's gate, pauses receiving); once a probe succeeds they go through
// again. A muted chat's cancelled history queries are cancellations by the
// caller and do not count as failures; TASK_TIMEOUT timeouts do.
//
// Which errors count is b's Config.IsFailure; the wiring should count only
// Weaviate's own trouble (store.IsOutage, for example), not a request
// Weaviate rejected.
func GuardStore(s pipeline.Store, b *breaker.Breaker) pipeline.Store { return guarded{s: s, b: b} }

type guarded struct {
	s pipeline.Store
	b *breaker.Breaker
}

var _ pipeline.Store = guarded{}

func (g guarded) History(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error) {
	return breaker.Call(ctx, g.b, func(ctx context.Context) ([]event.ContextMessage, error) {
		return g.s.History(ctx, chatID, role, before, limit)
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
