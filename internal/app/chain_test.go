package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/handler"
)

// failingDLQ fails its first fails moves as a throttled queue does.
type failingDLQ struct{ fails, puts atomic.Int64 }

func (d *failingDLQ) Put(context.Context, *handler.Message, string, string) error {
	d.puts.Add(1)
	if d.fails.Add(-1) >= 0 {
		return handler.Transient(errors.New("dead-letter queue throttled"))
	}
	return nil
}

type openGate struct{}

func (openGate) Wait(context.Context) error { return nil }

// TestChainHoldsDeadLetterMoves: in the worker's chain a dead-letter move
// that fails transiently is retried in place (Hold is outside DeadLetter):
// the message is finished, not given back to be received again; the
// poison body itself runs once per try and is never retried as such.
func TestChainHoldsDeadLetterMoves(t *testing.T) {
	t.Parallel()
	dlq := &failingDLQ{}
	dlq.fails.Store(2)
	var runs atomic.Int64
	poison := handler.HandlerFunc(func(context.Context, *handler.Message) error {
		runs.Add(1)
		return handler.Poison("invalid_json", errors.New("not JSON"))
	})
	out := &outcomes{}
	noSpan := func(h handler.Handler) handler.Handler { return h }
	h := chain(poison, t.Context(), dlq, openGate{}, out, func(string) zerolog.Logger { return zerolog.Nop() }, noSpan)
	if err := h.Handle(t.Context(), &handler.Message{ID: "m-1", Body: "{", ReceivedAt: time.Now()}); err != nil {
		t.Fatalf("Handle: %v, want nil (moved after two held retries)", err)
	}
	if dlq.puts.Load() != 3 || out.held.Load() != 2 || out.rejected.Load() != 1 || runs.Load() != 3 {
		t.Errorf("%d moves, %d held retries, %d rejected, %d runs; want 3, 2, 1, 3", dlq.puts.Load(), out.held.Load(), out.rejected.Load(), runs.Load())
	}
}
