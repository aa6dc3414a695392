package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/tokens"
)

// designResult is one design's run over the same kind of events.
type designResult struct {
	name    string
	n       int
	elapsed time.Duration
	lat     []time.Duration // per message: handling started → result ready
}

// lambdaCalls are the old Lambda's answers for one message.
type lambdaCalls struct {
	users, assistants, relevant []event.ContextMessage
	muted                       bool
	errs                        [5]error
}

// calls returns the five calls of one message as functions filling c.
func (c *lambdaCalls) calls(ctx context.Context, st *store.Store, ev event.Event) []func() {
	return []func(){
		func() {
			c.users, c.errs[0] = st.History(ctx, ev.ChatID, event.RoleUser, ev.SentAt, v2HistoryLimit)
		},
		func() {
			c.assistants, c.errs[1] = st.History(ctx, ev.ChatID, event.RoleAssistant, ev.SentAt, v2HistoryLimit)
		},
		func() {
			c.relevant, c.errs[2] = st.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, v2RelevanceLimit)
		},
		func() { c.muted, c.errs[3] = st.Muted(ctx, ev.ChatID, ev.SentAt) },
		func() { c.errs[4] = st.Put(ctx, ev) },
	}
}

// result combines the answers as the Lambda did and encodes the result.
func (c *lambdaCalls) result(ev event.Event, router *route.Router) ([]byte, error) {
	if err := errors.Join(c.errs[:]...); err != nil {
		return nil, err
	}
	r := event.Result{EventID: ev.EventID, ChatID: ev.ChatID, Route: router.Detect(ev.Text, ev.RouteHint), Muted: c.muted,
		History: []event.ContextMessage{}, Relevant: []event.ContextMessage{}, Degraded: []event.Degradation{}, ProcessedAt: time.Now()}
	if !c.muted {
		seen := map[string]bool{ev.EventID: true}
		for _, m := range slices.Concat(c.users, c.assistants) {
			if !seen[m.EventID] {
				seen[m.EventID] = true
				r.History = append(r.History, m)
			}
		}
		slices.SortStableFunc(r.History, func(a, b event.ContextMessage) int { return a.SentAt.Compare(b.SentAt) })
		for _, m := range c.relevant {
			if len(r.Relevant) < 5 && !seen[m.EventID] {
				seen[m.EventID] = true
				r.Relevant = append(r.Relevant, m)
			}
		}
	}
	return json.Marshal(r)
}

// serialDesign is the original Lambda: one message at a time, its calls one
// after another.
func serialDesign(ctx context.Context, st *store.Store, ev event.Event, router *route.Router) error {
	var c lambdaCalls
	for _, f := range c.calls(ctx, st, ev) {
		f()
	}
	_, err := c.result(ev, router)
	return err
}

// executorDesign is the Lambda of the seed: one message at a time, its
// calls on its own executor of five threads, started and stopped per
// message.
func executorDesign(ctx context.Context, st *store.Store, ev event.Event, router *route.Router) error {
	var c lambdaCalls
	work := make(chan func())
	var threads sync.WaitGroup
	for range 5 {
		threads.Go(func() {
			for f := range work {
				f()
			}
		})
	}
	for _, f := range c.calls(ctx, st, ev) {
		work <- f
	}
	close(work)
	threads.Wait()
	_, err := c.result(ev, router)
	return err
}

// oneAtATime runs design for each event in turn, each with the store
// storeFor gives it (a fresh one per message models a client that reuses
// no connection).
func oneAtATime(ctx context.Context, name string, storeFor func() (*store.Store, func()), events []workload.Event,
	design func(context.Context, *store.Store, event.Event, *route.Router) error) (designResult, error) {
	router := route.Builtin()
	res := designResult{name: name, n: len(events)}
	start := time.Now()
	for _, ev := range events {
		st, done := storeFor()
		t0 := time.Now()
		err := design(ctx, st, ev.Event, router)
		res.lat = append(res.lat, time.Since(t0))
		done()
		if err != nil {
			return res, fmt.Errorf("%s: event %s: %w", name, ev.EventID, err)
		}
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// chatprepOneAtATime is chatprep's pipeline (the handler on the one shared
// pool, as the worker runs it) handling one message at a time: its
// preprocessing latency, received to result ready.
func chatprepOneAtATime(ctx context.Context, st *store.Store, events []workload.Event, name string, cfg pipeline.Config) (designResult, error) {
	res := designResult{name: name, n: len(events)}
	pl, err := pool.New(pool.Config{Size: pool.DefaultSize})
	if err != nil {
		return res, err
	}
	defer pl.Close(context.Background()) //nolint:errcheck // every task is done
	pub := &readyPublisher{}
	counter, err := tokens.New(tokens.DefaultEncoding)
	if err != nil {
		return res, err
	}
	cfg.Worker = "bench"
	h, err := pipeline.New(cfg, pipeline.Deps{Store: st, Publisher: pub, Pool: pl, Router: route.Builtin(), Tokens: counter})
	if err != nil {
		return res, err
	}
	start := time.Now()
	for _, ev := range events {
		if err := h.Handle(ctx, &handler.Message{ID: ev.EventID, Body: ev.Body, ReceivedAt: time.Now()}); err != nil {
			return res, fmt.Errorf("chatprep: event %s: %w", ev.EventID, err)
		}
		res.lat = append(res.lat, pub.last)
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// readyPublisher takes results at once and keeps the last one's
// preprocessing time (receipt to result ready, as the result says).
type readyPublisher struct{ last time.Duration }

func (p *readyPublisher) Publish(_ context.Context, r *event.Result) error {
	p.last = time.Duration(r.TimingsMS.Preprocessing * float64(time.Millisecond))
	return nil
}
