package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/middleware"
	"github.com/chatprep/chatprep/internal/panics"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var errDown = errors.New("weaviate down")

// counts is an Observer.
type counts struct{ received, rejected, failed atomic.Int64 }

func (c *counts) MessageReceived(time.Duration) { c.received.Add(1) }
func (c *counts) MessageRejected()              { c.rejected.Add(1) }
func (c *counts) MessageFailed()                { c.failed.Add(1) }

// deadLetters is a hand-written fake of the dead-letter queue.
type deadLetters struct {
	mu    sync.Mutex
	put   []string // "id code reason"
	fails int
}

func (d *deadLetters) Put(_ context.Context, m *handler.Message, code, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fails > 0 {
		d.fails--
		return handler.Transient(errors.New("SQS throttled"))
	}
	d.put = append(d.put, m.ID+" "+code+" "+reason)
	return nil
}

func message() *handler.Message {
	return &handler.Message{ID: "m-1", ReceiveCount: 2, SentAt: time.Now().Add(-time.Second), ReceivedAt: time.Now()}
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLogOneLinePerMessage: the handler's summary and fields, then the
// middleware's, once each; a failure at warn with the error and counted.
func TestLogOneLinePerMessage(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	obs := &counts{}
	ok := handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		handler.Describe(ctx, "", func(e *zerolog.Event) { e.Str("event_id", "e-1") })
		handler.Describe(ctx, "message preprocessed", func(e *zerolog.Event) { e.Str("route", "general") })
		return nil
	})
	h := middleware.Log(zerolog.New(&buf), obs)(ok)
	if err := h.Handle(t.Context(), message()); err != nil {
		t.Fatal(err)
	}
	failing := middleware.Log(zerolog.New(&buf), obs)(handler.HandlerFunc(func(context.Context, *handler.Message) error { return errDown }))
	if err := failing.Handle(t.Context(), message()); !errors.Is(err, errDown) {
		t.Fatalf("error %v not passed on", err)
	}
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2", len(got))
	}
	first := got[0]
	if first["message"] != "message preprocessed" || first["level"] != "info" || first["event_id"] != "e-1" ||
		first["route"] != "general" || first["message_id"] != "m-1" || first["receive_count"] != 2.0 {
		t.Errorf("line %v", first)
	}
	if _, ok := first["duration_ms"].(float64); !ok {
		t.Errorf("no duration_ms in %v", first)
	}
	if second := got[1]; second["message"] != middleware.SummaryFailed || second["level"] != "warn" || second["error"] != errDown.Error() {
		t.Errorf("failure line %v", second)
	}
	if obs.received.Load() != 2 || obs.failed.Load() != 1 {
		t.Errorf("received %d, failed %d; want 2 and 1", obs.received.Load(), obs.failed.Load())
	}
}

// TestRecover: a panic is the message's error, with its stack.
func TestRecover(t *testing.T) {
	t.Parallel()
	h := middleware.Recover()(handler.HandlerFunc(func(context.Context, *handler.Message) error { panic("boom") }))
	var pe *panics.Error
	if err := h.Handle(t.Context(), message()); !errors.As(err, &pe) || pe.Value != "boom" || handler.IsTransient(err) {
		t.Errorf("error %v, want a permanent panic error", err)
	}
}

// TestDeadLetter: poison is moved and reported finished; a failed move
// leaves the message (transiently) failed; other errors pass untouched; a
// message whose context is done is not moved.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	dlq := &deadLetters{fails: 1}
	obs := &counts{}
	poison := handler.HandlerFunc(func(context.Context, *handler.Message) error {
		return handler.Poison("not_json", errors.New("invalid character 'x'"))
	})
	h := middleware.DeadLetter(dlq, obs)(poison)
	if err := h.Handle(t.Context(), message()); !handler.IsTransient(err) {
		t.Errorf("failed move: %v, want the transient send error", err)
	}
	var rep handler.Report
	if err := h.Handle(handler.WithReport(t.Context(), &rep), message()); err != nil {
		t.Errorf("moved: %v, want nil (finished)", err)
	}
	if len(dlq.put) != 1 || dlq.put[0] != "m-1 not_json invalid character 'x'" || obs.rejected.Load() != 1 {
		t.Errorf("dead letters %v, rejected %d", dlq.put, obs.rejected.Load())
	}
	if rep.Summary != middleware.SummaryDeadLettered || !rep.Warn {
		t.Errorf("report %+v", rep)
	}
	other := middleware.DeadLetter(dlq, obs)(handler.HandlerFunc(func(context.Context, *handler.Message) error { return errDown }))
	if err := other.Handle(t.Context(), message()); !errors.Is(err, errDown) {
		t.Errorf("other error became %v", err)
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.Handle(gone, message()); err == nil || len(dlq.put) != 1 {
		t.Errorf("a message whose lease is gone was moved (err %v)", err)
	}
}

// TestHold: transient failures are retried in place until they pass; a
// permanent one at once is not; the stop ends holding at once; For bounds
// holding. In virtual time: the back-offs are real sizes.
func TestHold(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fast := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second} // virtual time: real sizes cost nothing
		var calls atomic.Int32
		flaky := handler.HandlerFunc(func(ctx context.Context, _ *handler.Message) error {
			try := calls.Load()
			handler.Describe(ctx, "", func(e *zerolog.Event) { e.Int32("try", try) })
			if calls.Add(1) < 4 {
				return handler.Transient(errDown)
			}
			return nil
		})
		var held atomic.Int64
		var buf bytes.Buffer
		h := middleware.Log(zerolog.New(&buf), nil)(middleware.Hold(middleware.HoldConfig{Backoff: fast, Held: &held})(flaky))
		if err := h.Handle(t.Context(), message()); err != nil || calls.Load() != 4 || held.Load() != 3 {
			t.Errorf("err %v after %d calls, %d held; want success on the 4th call", err, calls.Load(), held.Load())
		}
		if l := buf.String(); strings.Count(l, `"try"`) != 1 || !strings.Contains(l, `"try":3`) {
			t.Errorf("log line %s: want the last try's fields, once", l)
		}

		calls.Store(0)
		permanent := handler.HandlerFunc(func(context.Context, *handler.Message) error { calls.Add(1); return errDown })
		if err := middleware.Hold(middleware.HoldConfig{Backoff: fast})(permanent).Handle(t.Context(), message()); !errors.Is(err, errDown) || calls.Load() != 1 {
			t.Errorf("permanent: err %v after %d calls, want 1 call", err, calls.Load())
		}

		stop, stopNow := context.WithCancel(t.Context())
		calls.Store(0)
		down := handler.HandlerFunc(func(context.Context, *handler.Message) error {
			if calls.Add(1) == 2 {
				stopNow()
			}
			return handler.Transient(errDown)
		})
		if err := middleware.Hold(middleware.HoldConfig{Backoff: fast, Stop: stop})(down).Handle(t.Context(), message()); !handler.IsTransient(err) || calls.Load() != 2 {
			t.Errorf("stop: err %v after %d calls, want the transient error after 2", err, calls.Load())
		}

		calls.Store(0)
		const holdFor = 5 * time.Second
		begin := time.Now()
		bound := middleware.Hold(middleware.HoldConfig{For: holdFor, Backoff: fast})(handler.HandlerFunc(func(context.Context, *handler.Message) error {
			calls.Add(1)
			return handler.Transient(errDown)
		}))
		if err := bound.Handle(t.Context(), message()); !handler.IsTransient(err) || calls.Load() < 2 {
			t.Errorf("bound: err %v after %d calls", err, calls.Load())
		}
		// It stops before a wait that would pass the bound: within one
		// back-off of it, never past it.
		if took := time.Since(begin); took > holdFor || took <= holdFor-fast.Max {
			t.Errorf("bound: held %v, want up to %v and less than a back-off short of it", took, holdFor)
		}
	})
}

// gate is closed until opened.
type gate struct{ open chan struct{} }

func (g gate) Wait(ctx context.Context) error {
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestPause: the handler waits for the gate; the stop ends the wait with a
// transient error and no call.
func TestPause(t *testing.T) {
	t.Parallel()
	g := gate{open: make(chan struct{})}
	var calls atomic.Int32
	h := handler.HandlerFunc(func(context.Context, *handler.Message) error { calls.Add(1); return nil })
	stop, stopNow := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- middleware.Pause(g, stop)(h).Handle(t.Context(), message()) }()
	stopNow()
	if err := <-done; !handler.IsTransient(err) || calls.Load() != 0 || !strings.Contains(err.Error(), "paused") {
		t.Errorf("stopped: err %v, %d calls", err, calls.Load())
	}
	close(g.open)
	if err := middleware.Pause(g, t.Context())(h).Handle(t.Context(), message()); err != nil || calls.Load() != 1 {
		t.Errorf("open: err %v, %d calls", err, calls.Load())
	}
}
