package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/store"
)

// readyz is one answer of the worker's /readyz.
type readyz struct {
	code int
	body map[string]any
}

func (w *worker) readyz(t *testing.T) readyz {
	t.Helper()
	resp, err := http.Get("http://" + w.health + "/readyz")
	if err != nil {
		t.Fatalf("worker's health endpoint: %v", err)
	}
	defer resp.Body.Close()
	r := readyz{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return r
}

func (r readyz) notReached() []string {
	var names []string
	list, _ := r.body["not_reached"].([]any)
	for _, n := range list {
		s, _ := n.(string)
		names = append(names, s)
	}
	return names
}

// waitReadyz polls /readyz until cond holds.
func (w *worker) waitReadyz(t *testing.T, timeout time.Duration, what string, cond func(readyz) bool) readyz {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := w.readyz(t)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; /readyz: %d %v", timeout, what, r.code, r.body)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// holdingStore is the real Weaviate store whose Put of one event blocks
// until the test releases it: a message in flight for as long as the test
// needs.
type holdingStore struct {
	*store.Store
	eventID  string
	entered  chan struct{} // closed when that Put starts
	released chan struct{} // closed by the test
}

func (s *holdingStore) Put(ctx context.Context, ev event.Event) error {
	if ev.EventID == s.eventID {
		close(s.entered)
		select {
		case <-s.released:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Put(ctx, ev)
}

// TestReadyOnceWeaviateWasReached follows /readyz through a worker's life
// (CONTRACT.md, Health). Started while its Weaviate is down, the worker
// answers 503 naming weaviate (with the error) and the input queue, and
// takes no message: it sends no ReceiveMessage at all. Once Weaviate comes
// up it is ready by itself and processes the waiting event. After SIGTERM
// it answers 503 "stopping" while it still drains a message in flight. (That
// a later Weaviate outage keeps it ready, the breaker open and the events
// held until Weaviate is back, TestWeaviateStopsMidRun checks on a Weaviate
// of its own, in parallel.)
func TestReadyOnceWeaviateWasReached(t *testing.T) {
	t.Parallel()
	own := ownWeaviate(t)
	// SIGTERM lets the poll in flight end, and polls end within
	// SHUTDOWN_TIMEOUT: 5s makes them 4s, and leaves the drain room for
	// the test to see "stopping" (8 tests at once on 2 cores) before it
	// lets the held write finish.
	e := stacktest.New(t, stacktest.With("LOG_LEVEL", "info", "SHUTDOWN_TIMEOUT", "5s"))
	wv := own()
	cfg := e.Config
	cfg.WeaviateURL, cfg.WeaviateGRPCAddr = wv.URL, wv.GRPCAddr
	st, err := store.New(store.Config{URL: wv.URL, GRPCAddr: wv.GRPCAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := &holdingStore{Store: st, eventID: "last", entered: make(chan struct{}), released: make(chan struct{})}
	chat := e.ChatID("c")

	wv.Kill()
	e.Send(t, stacktest.Event(chatEvent(chat, "first", "user", "Where is order S00042?", 0)))
	ready := make(chan struct{})
	w := launch(t, cfg, app.Options{Store: hs, Ready: func(string) { close(ready) }})

	r := w.waitReadyz(t, time.Minute, "the reason weaviate is not reached", func(r readyz) bool {
		wvState, _ := r.body["weaviate"].(map[string]any)
		return wvState["waiting"] != nil
	})
	if r.code != http.StatusServiceUnavailable || r.body["status"] != "not ready" ||
		!slices.Equal(r.notReached(), []string{"weaviate", "input_queue"}) {
		t.Errorf("with Weaviate down: %d %v; want 503 not ready, naming weaviate and input_queue", r.code, r.body)
	}
	w.logs.Wait(t, time.Minute, "the warning that Weaviate is not reached", func(ls []logtest.Line) bool {
		for _, l := range ls {
			if l.Level() == "warn" && l.Str("component") == "store" && l.Str("weaviate_url") == wv.URL && l.Str("error") != "" {
				return true
			}
		}
		return false
	})
	if v := w.vars(t); receiveCalls(v) != 0 || e.QueueDepth(t, e.InputURL) != 1 {
		t.Fatalf("with Weaviate down the worker received (%v ReceiveMessage calls; input depth %d): it must take no message",
			receiveCalls(v), e.QueueDepth(t, e.InputURL))
	}
	select {
	case <-ready:
		t.Fatal("Ready called before Weaviate was reached")
	default:
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := wv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatal("not ready a minute after Weaviate came up")
	}
	if r := w.readyz(t); r.code != http.StatusOK || r.body["status"] != "ready" {
		t.Errorf("Weaviate up: %d %v, want 200 ready", r.code, r.body)
	}
	if res := e.Results(t, 1, resultTimeout); res[0].EventID != "first" {
		t.Errorf("result for %s, want first", res[0].EventID)
	}

	// SIGTERM while a message is in flight: not ready during the drain.
	e.Send(t, stacktest.Event(chatEvent(chat, "last", "user", "Thanks!", 2)))
	select {
	case <-hs.entered:
	case <-time.After(resultTimeout):
		t.Fatal("the last event was not stored")
	}
	w.cancel()
	w.waitReadyz(t, 10*time.Second, "not ready after SIGTERM", func(r readyz) bool {
		return r.code == http.StatusServiceUnavailable && r.body["status"] == "stopping"
	})
	close(hs.released)
	if err := w.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if res := e.Results(t, 1, resultTimeout); res[0].EventID != "last" {
		t.Errorf("result for %s, want last (the message in flight finished in the drain)", res[0].EventID)
	}
}

// receiveCalls is the worker's ReceiveMessage calls in /debug/vars.
func receiveCalls(v map[string]any) float64 {
	c, _ := v["consumer"].(map[string]any)
	calls, _ := c["Calls"].(map[string]any)
	n, _ := calls["ReceiveMessage"].(float64)
	return n
}
