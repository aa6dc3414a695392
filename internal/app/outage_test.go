package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/app/apptest"
	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/store/storetest"
)

// ownWeaviate starts a Weaviate server for one test (to be killed without
// disturbing the others) with the worker's collections, in the background:
// the test makes its namespace on the shared stack meanwhile (the first to
// ask starts that stack, another Weaviate), and the returned func waits for
// the server. It is stopped when the test ends, whether or not the test
// waited for it.
func ownWeaviate(t *testing.T) (wait func() *devstack.Weaviate) {
	t.Helper()
	type started struct {
		w   *devstack.Weaviate
		err error
	}
	ch := make(chan started, 1)
	go func() {
		w, err := startOwnWeaviate()
		ch <- started{w, err}
	}()
	var (
		res  started
		done bool
	)
	get := func() started { // on the test's goroutine only
		if !done {
			res, done = <-ch, true
		}
		return res
	}
	t.Cleanup(func() {
		if w := get().w; w != nil {
			if err := w.Stop(); err != nil {
				t.Error(err)
			}
		}
	})
	return func() *devstack.Weaviate {
		t.Helper()
		r := get()
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.w
	}
}

// startOwnWeaviate is ownWeaviate's server: started, with the worker's
// collections; stopped again if they cannot be made.
func startOwnWeaviate() (*devstack.Weaviate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := weaviatetest.StartContext(ctx, devstack.WeaviateOptions{}, io.Discard)
	if err != nil {
		return nil, err
	}
	st, err := store.New(store.Config{URL: w.URL, GRPCAddr: w.GRPCAddr})
	if err == nil {
		err = st.EnsureSchema(ctx)
		st.Close()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("own weaviate's schema: %w", err), w.Stop())
	}
	return w, nil
}

// shortPolls is the SHUTDOWN_TIMEOUT of the tests whose worker's stop is
// not the point: a stop lets the long poll in flight finish, and the polls
// end within SHUTDOWN_TIMEOUT, so 2s makes them 1s polls and each stop at
// most about a second, where stacktest's 5s (4s polls) makes a stop right
// after a receive wait 4s.
const shortPolls = "2s"

// workerOnOwnWeaviate starts a worker (LOG_LEVEL info, the contract's
// defaults but for shortPolls) on a Weaviate of the test's own
// (ownWeaviate).
func workerOnOwnWeaviate(t *testing.T) (*devstack.Weaviate, *stacktest.Env, *worker) {
	t.Helper()
	own := ownWeaviate(t)
	e := stacktest.New(t, stacktest.With("LOG_LEVEL", "info", "SHUTDOWN_TIMEOUT", shortPolls))
	wv := own()
	cfg := e.Config
	cfg.WeaviateURL, cfg.WeaviateGRPCAddr = wv.URL, wv.GRPCAddr
	return wv, e, startWorker(t, cfg, app.Options{})
}

// addEvent appends the message of chat event ev to msgs and returns the
// event as the worker decodes it.
func addEvent(t *testing.T, msgs *[]stacktest.Msg, ev map[string]any) event.Event {
	t.Helper()
	m := stacktest.Event(ev)
	*msgs = append(*msgs, m)
	d, err := event.Decode([]byte(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// vars reads the worker's /debug/vars.
func (w *worker) vars(t *testing.T) map[string]any {
	t.Helper()
	v, err := apptest.DebugVars(w.health)
	if err != nil {
		t.Fatalf("worker's health endpoint: %v", err)
	}
	return v
}

// status is the HTTP status of a GET on the worker's health endpoint.
func (w *worker) status(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + w.health + path)
	if err != nil {
		t.Fatalf("worker's health endpoint: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitVars polls /debug/vars until cond holds.
func (w *worker) waitVars(t *testing.T, timeout time.Duration, what string, cond func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(w.vars(t)) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; /debug/vars: %v", timeout, what, w.vars(t))
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWeaviateStopsMidRun kills the worker's Weaviate between two batches
// of chat events and brings it back: while it is gone the worker keeps
// running and answering its health checks (ready, once Weaviate was
// reached, with the breaker open), publishes nothing it could not store,
// and holds the messages to retry them; once Weaviate is back it recovers
// by itself, and every event ends with exactly one result and one stored
// message, nothing in the dead-letter queue.
func TestWeaviateStopsMidRun(t *testing.T) {
	t.Parallel()
	// MAX_RECEIVE_COUNT stays at its default (5): held messages spend no
	// receive, so the outage must not push any event to the dead-letter queue.
	wv, e, w := workerOnOwnWeaviate(t)

	const chats = 3
	var before, during []stacktest.Msg
	var events []event.Event
	add := func(to *[]stacktest.Msg, ev map[string]any) { events = append(events, addEvent(t, to, ev)) }
	for c := range chats {
		chat := e.ChatID(fmt.Sprintf("c%d", c))
		add(&before, chatEvent(chat, fmt.Sprintf("c%d-a1", c), "user", "Where is delivery WH/OUT/00005?", 0))
		add(&before, chatEvent(chat, fmt.Sprintf("c%d-a2", c), "assistant", "It left the warehouse this morning.", 1))
		add(&during, chatEvent(chat, fmt.Sprintf("c%d-b1", c), "user", "When does it arrive?", 2))
		add(&during, chatEvent(chat, fmt.Sprintf("c%d-b2", c), "assistant", "Tomorrow before noon.", 3))
		add(&during, chatEvent(chat, fmt.Sprintf("c%d-b3", c), "user", "Can the driver call ahead?", 4))
	}
	want := contracttest.Expect(events, e.Config.HistoryLimit)

	from := time.Now()
	e.Send(t, before...)
	results := e.Results(t, chats, resultTimeout)

	wv.Kill()
	e.Send(t, during...)
	// The worker notices: stores fail, the messages are held and retried
	// in place (no receive spent), and the breaker opens, which pauses
	// receiving and the retries.
	w.logs.Wait(t, resultTimeout, "a held message", func(ls []logtest.Line) bool {
		return logtest.Count(ls, "dependency failed: message held, to be retried here", "") > 0
	})
	w.waitVars(t, resultTimeout, "the breaker to open", func(v map[string]any) bool { return v["breaker"] != "closed" })
	if !w.running() || w.status(t, "/healthz") != http.StatusOK {
		t.Fatalf("with Weaviate down the worker is not alive (running %v)", w.running())
	}
	// Once it has reached Weaviate it stays ready through an outage, and
	// says why it pauses.
	if r := w.readyz(t); r.code != http.StatusOK || r.body["status"] != "ready" || r.body["breaker"] == "closed" {
		t.Fatalf("with Weaviate down: /readyz %d %v; want 200 ready with the breaker not closed", r.code, r.body)
	}
	// Nothing could be stored, so nothing is published.
	e.NoMoreResults(t, time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := wv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	results = append(results, e.Results(t, 2*chats, 2*resultTimeout)...)
	e.NoMoreResults(t, time.Second)
	if !w.running() {
		t.Fatal("worker stopped")
	}

	seen := map[string]bool{}
	for _, r := range results {
		if seen[r.EventID] {
			t.Errorf("%s: a second result", r.EventID)
		}
		seen[r.EventID] = true
		contracttest.CheckEnvelope(t, r, true, from)
		// A result published while Weaviate came back may lack a part, as
		// listed in degraded; the rest must be right.
		if len(r.Degraded) == 0 {
			contracttest.CheckContext(t, r, want[r.EventID], e.Config.RelevanceLimit)
		}
		for _, d := range r.Degraded {
			switch d.Task {
			case pipeline.TaskMessageHistory, pipeline.TaskRelevanceSearch, pipeline.TaskReferences, pipeline.TaskMutedStatus:
			default:
				t.Errorf("%s: degraded task %q", r.EventID, d.Task)
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s: no result", id)
		}
	}
	store := storetest.Reader{URL: wv.URL}
	for _, ev := range events {
		if store.Object(t, ev.ChatID, ev.EventID) == nil {
			t.Errorf("%s: not stored", ev.EventID)
		}
	}
	for c := range chats {
		if n := store.Stored(t, e.ChatID(fmt.Sprintf("c%d", c))); n != len(events)/chats {
			t.Errorf("chat c%d: %d stored objects, want %d", c, n, len(events)/chats)
		}
	}
	if n := e.QueueDepth(t, e.DLQURL); n != 0 {
		t.Errorf("%d messages in the dead-letter queue", n)
	}
	w.waitVars(t, resultTimeout, "the breaker to close", func(v map[string]any) bool { return v["breaker"] == "closed" })
}
