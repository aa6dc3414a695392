package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/tokens"
)

// nopPub takes every result.
type nopPub struct{}

func (nopPub) Publish(context.Context, *event.Result) error { return nil }

// BenchmarkHandleV3 is the worker's own CPU for one user message with a v3
// context (21 recent messages, 60 hits with their neighbours, all with
// numbers in their text), the store answering at once: the gathering,
// Assemble, references and route, without Weaviate or SQS.
func BenchmarkHandleV3(b *testing.B) {
	c, err := tokens.New(tokens.O200kBase)
	if err != nil {
		b.Fatal(err)
	}
	p, err := pool.New(pool.Config{Size: 8, TaskTimeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background()) //nolint:errcheck // every task is done
	mk := func(i int) event.ContextMessage {
		m := event.ContextMessage{EventID: fmt.Sprintf("m%d", i), Role: event.RoleUser, Text: fmt.Sprintf("hello there order number %d for the party keg of pilsner, we need it on friday please", i), SentAt: at(0).Add(time.Duration(i) * time.Second)}
		if i%2 == 1 {
			m.Role = event.RoleAssistant
		}
		m.Tokens = 20
		return m
	}
	st := &fakeStore{}
	st.RecentFunc = func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
		var out []event.ContextMessage
		for i := 100; i < 121; i++ {
			out = append(out, mk(i))
		}
		return out, nil
	}
	st.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
		var out []event.ContextMessage
		for i := range pipeline.Candidates(20, 10) {
			m := mk(i * 2)
			s := 1.0
			m.Score = &s
			out = append(out, m)
		}
		return out, nil
	}
	st.FollowingFunc = func(_ context.Context, _ string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
		out := map[string][]event.ContextMessage{}
		for i, h := range hits {
			out[h.EventID] = []event.ContextMessage{mk(i*2 + 1)}
		}
		return out, nil
	}
	h, err := pipeline.New(pipeline.Config{Worker: "b"}, pipeline.Deps{Store: st, Publisher: nopPub{}, Pool: p, Router: route.Builtin(), Tokens: c})
	if err != nil {
		b.Fatal(err)
	}
	body := userEvent("e-1", "c-1", "when will my party keg arrive, is it still on friday?")
	for b.Loop() {
		if err := h.Handle(context.Background(), &handler.Message{ID: "x", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}
