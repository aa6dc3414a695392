package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/sqsbatch/sqsbatchtest"
)

// The old Lambda's call latencies, put in front of every store call.
const (
	historyDelay   = 150 * time.Millisecond // each of the two history reads
	relevanceDelay = 300 * time.Millisecond // the slowest single call
	mutedDelay     = 50 * time.Millisecond
	storeDelay     = 100 * time.Millisecond
	serialTotal    = 2*historyDelay + relevanceDelay + mutedDelay + storeDelay // 750 ms
)

// delayStore answers every call after its fixed delay (or when ctx ends).
type delayStore struct{}

var _ pipeline.Store = delayStore{}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// History is the Lambda's history read, one role at a time (serial and
// executor5 call it; the pipeline reads both roles at once with Recent).
func (delayStore) History(ctx context.Context, _ string, role event.Role, _ time.Time, _ int) ([]event.ContextMessage, error) {
	return []event.ContextMessage{msg("h-"+string(role), role, 1)}, pause(ctx, historyDelay)
}

func (delayStore) Recent(ctx context.Context, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
	return []event.ContextMessage{msg("h-user", event.RoleUser, 1), msg("h-assistant", event.RoleAssistant, 2)}, pause(ctx, historyDelay)
}

// Following and References answer at once: the Lambda had neither, and
// the benchmark compares the same work (the handler runs with neither).
func (delayStore) Following(context.Context, string, []event.ContextMessage, int) (map[string][]event.ContextMessage, error) {
	return nil, nil
}

func (delayStore) References(context.Context, string, time.Time, int) ([]event.Reference, error) {
	return nil, nil
}

func (delayStore) Relevant(ctx context.Context, _, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
	return []event.ContextMessage{msg("r-1", event.RoleUser, 0)}, pause(ctx, relevanceDelay)
}

func (delayStore) Muted(ctx context.Context, _ string, _ time.Time) (bool, error) {
	return false, pause(ctx, mutedDelay)
}

func (delayStore) Put(ctx context.Context, _ event.Event) error { return pause(ctx, storeDelay) }

func (delayStore) SetMuted(ctx context.Context, _ event.Event) error { return pause(ctx, storeDelay) }

// serial is the original Lambda: every call after the other.
func serial(ctx context.Context, s delayStore, ev event.Event) time.Duration {
	start := time.Now()
	_, _ = s.History(ctx, ev.ChatID, event.RoleUser, ev.SentAt, 11)
	_, _ = s.History(ctx, ev.ChatID, event.RoleAssistant, ev.SentAt, 11)
	_, _ = s.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, 26)
	_, _ = s.Muted(ctx, ev.ChatID, ev.SentAt)
	_ = s.Put(ctx, ev)
	return time.Since(start)
}

// executor5 is the first fix: each invocation alone on its own executor of
// five threads (goroutines here), started and stopped per message.
func executor5(ctx context.Context, s delayStore, ev event.Event) time.Duration {
	start := time.Now()
	work := make(chan func())
	var threads sync.WaitGroup
	for range 5 {
		threads.Go(func() {
			for f := range work {
				f()
			}
		})
	}
	var calls sync.WaitGroup
	for _, f := range []func(){
		func() { _, _ = s.History(ctx, ev.ChatID, event.RoleUser, ev.SentAt, 11) },
		func() { _, _ = s.History(ctx, ev.ChatID, event.RoleAssistant, ev.SentAt, 11) },
		func() { _, _ = s.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, 26) },
		func() { _, _ = s.Muted(ctx, ev.ChatID, ev.SentAt) },
		func() { _ = s.Put(ctx, ev) },
	} {
		calls.Add(1)
		work <- func() { defer calls.Done(); f() }
	}
	calls.Wait()
	close(work)
	threads.Wait()
	return time.Since(start)
}

// timingPublisher keeps each result's preprocessing time and hands the
// result to the real publisher.
type timingPublisher struct {
	next *publish.Publisher
	mu   sync.Mutex
	prep map[string]time.Duration
}

func (p *timingPublisher) Publish(ctx context.Context, r *event.Result) error {
	p.mu.Lock()
	p.prep[r.EventID] = time.Duration(r.TimingsMS.Preprocessing * float64(time.Millisecond))
	p.mu.Unlock()
	return p.next.Publish(ctx, r)
}

// chatprep handles the message with the real handler on the shared pool
// and returns its preprocessing time from the result.
func chatprep(ctx context.Context, h *pipeline.Handler, pub *timingPublisher, ev event.Event, body string) (time.Duration, error) {
	if err := h.Handle(ctx, &handler.Message{ID: ev.EventID, Body: body, ReceivedAt: time.Now()}); err != nil {
		return 0, err
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	return pub.prep[ev.EventID], nil
}

// BenchmarkPreprocessing compares, in one run, the preprocessing latency of
// one user message with the old Lambda's call latencies in front of every
// store call: all calls in series (the original Lambda), the first fix
// (each message on its own 5-worker executor), and chatprep (the shared
// pool). With one message in flight chatprep should be within 10 ms of the
// slowest call (300 ms); with 200 in flight on POOL_SIZE 64 the shared
// pool's bound shows: 64 concurrent Weaviate calls at most, so messages
// queue; POOL_SIZE 1000 (five calls for each of the 200) removes the queue.
//
// Each iteration takes seconds; run it with -benchtime=3x.
func BenchmarkPreprocessing(b *testing.B) {
	for _, sc := range []struct {
		name      string
		inFlight  int
		poolSize  int
		noSerials bool
	}{
		{"1_in_flight/pool64", 1, 64, false},
		{"200_in_flight/pool64", 200, 64, false},
		{"200_in_flight/pool1000", 200, 1000, true},
	} {
		b.Run(sc.name, func(b *testing.B) {
			p, err := pool.New(pool.Config{Size: sc.poolSize, TaskTimeout: 2 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background()) //nolint:errcheck // every task is done
			sqsPub, err := publish.New(&sqsbatchtest.Accepting{}, publish.Config{QueueURL: "http://sqs/1/chat-context.fifo"})
			if err != nil {
				b.Fatal(err)
			}
			defer sqsPub.Close(context.Background()) //nolint:errcheck // every result is accepted
			pub := &timingPublisher{next: sqsPub, prep: map[string]time.Duration{}}
			h, err := pipeline.New(pipeline.Config{Worker: "bench", NoNeighbours: true, NoReferences: true}, pipeline.Deps{
				Store: delayStore{}, Publisher: pub, Pool: p, Router: route.Builtin(), Tokens: wordCounter{},
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var serialD, execD, prepD []time.Duration
			var mu sync.Mutex
			iter := 0
			for b.Loop() {
				iter++
				type msgBody struct {
					ev   event.Event
					body string
				}
				msgs := make([]msgBody, sc.inFlight)
				for i := range msgs {
					id := fmt.Sprintf("e-%d-%d", iter, i)
					body := userEvent(id, fmt.Sprintf("c-%d", i), "when will my order S00042 be delivered?")
					ev, err := event.Decode([]byte(body))
					if err != nil {
						b.Fatal(err)
					}
					msgs[i] = msgBody{ev, body}
				}
				each := func(f func(m msgBody) time.Duration, into *[]time.Duration) {
					var wg sync.WaitGroup
					for _, m := range msgs {
						wg.Go(func() {
							d := f(m)
							mu.Lock()
							*into = append(*into, d)
							mu.Unlock()
						})
					}
					wg.Wait()
				}
				if !sc.noSerials {
					each(func(m msgBody) time.Duration { return serial(ctx, delayStore{}, m.ev) }, &serialD)
					each(func(m msgBody) time.Duration { return executor5(ctx, delayStore{}, m.ev) }, &execD)
				}
				each(func(m msgBody) time.Duration {
					d, err := chatprep(ctx, h, pub, m.ev, m.body)
					if err != nil {
						b.Error(err)
					}
					return d
				}, &prepD)
			}
			chat := mean(prepD)
			b.ReportMetric(ms(chat), "chatprep_ms")
			b.ReportMetric(ms(slices.Max(prepD)), "chatprep_max_ms")
			b.ReportMetric(ms(chat-relevanceDelay), "chatprep_over_slowest_ms")
			b.ReportMetric(float64(chat)/float64(serialTotal), "chatprep/serial_750ms")
			st := sqsPub.Stats()
			b.ReportMetric(float64(st.Accepted)/float64(max(1, st.Calls)), "results/sqs_call")
			if !sc.noSerials {
				ser, ex := mean(serialD), mean(execD)
				b.ReportMetric(ms(ser), "serial_ms")
				b.ReportMetric(ms(ex), "executor5_ms")
				b.ReportMetric(float64(ex)/float64(ser), "executor5/serial")
				b.ReportMetric(float64(chat)/float64(ser), "chatprep/serial")
			}
		})
	}
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(1, len(ds)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
