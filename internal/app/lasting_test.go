package app_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/store/storetest"
)

// TestReadOnlyShardMidRun turns the messages collection's shard read-only
// (Weaviate's shard status API, as a full disk does) between two batches of
// events: the worker publishes nothing it could not store, opens its
// breaker at once (a lasting fault) and says why in /readyz, stays ready,
// stops receiving, and holds what it has; once the shard is READY again it
// resumes by itself (the breaker's check, then a probe), and every event ends
// with one result and one stored object, nothing in the dead-letter queue.
func TestReadOnlyShardMidRun(t *testing.T) {
	t.Parallel()
	wv, e, w := workerOnOwnWeaviate(t)

	const chats = 3
	var before, during []stacktest.Msg
	var events []event.Event
	users := 0
	add := func(to *[]stacktest.Msg, ev map[string]any) {
		d := addEvent(t, to, ev)
		events = append(events, d)
		if d.Role == event.RoleUser {
			users++
		}
	}
	for c := range chats {
		chat := e.ChatID(fmt.Sprintf("c%d", c))
		add(&before, chatEvent(chat, fmt.Sprintf("c%d-a1", c), "user", "Where is order S00042?", 0))
		add(&during, chatEvent(chat, fmt.Sprintf("c%d-b1", c), "user", "Is it shipped yet?", 2))
		add(&during, chatEvent(chat, fmt.Sprintf("c%d-b2", c), "assistant", "Yes, this morning.", 3))
		add(&during, chatEvent(chat, fmt.Sprintf("c%d-b3", c), "user", "Thanks, and the invoice?", 4))
	}
	e.Send(t, before...)
	results := e.Results(t, chats, resultTimeout)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := wv.SetShardStatus(ctx, store.MessagesCollection, "READONLY", ""); err != nil {
		t.Fatal(err)
	}
	e.Send(t, during...)
	// One failed write opens the breaker; its check keeps it open while the
	// shard is read-only, and /readyz says so (still 200: the worker holds
	// its messages and resumes by itself).
	r := w.waitReadyz(t, resultTimeout, "the breaker open for the read-only shard, checked", func(r readyz) bool {
		return r.body["breaker_reason"] == "check failed"
	})
	if r.code != http.StatusOK || r.body["breaker"] == "closed" || r.body["breaker_cause"] != store.KindReadOnly.String() ||
		r.body["breaker_since"] == nil {
		t.Errorf("/readyz while the shard is read-only: %d %v; want 200 with the breaker open for a read-only shard", r.code, r.body)
	}
	e.NoMoreResults(t, time.Second)
	received := receiveCalls(w.vars(t))
	e.NoMoreResults(t, 2*time.Second)
	if now := receiveCalls(w.vars(t)); now != received {
		t.Errorf("receive calls went from %v to %v while the breaker was open: intake should pause", received, now)
	}

	if _, err := wv.SetShardStatus(ctx, store.MessagesCollection, "READY", ""); err != nil {
		t.Fatal(err)
	}
	results = append(results, e.Results(t, users-chats, 2*resultTimeout)...)
	e.NoMoreResults(t, time.Second)

	seen := map[string]bool{}
	for _, r := range results {
		if seen[r.EventID] {
			t.Errorf("%s: a second result", r.EventID)
		}
		seen[r.EventID] = true
	}
	st := storetest.Reader{URL: wv.URL}
	for _, ev := range events {
		if st.Object(t, ev.ChatID, ev.EventID) == nil {
			t.Errorf("%s: not stored", ev.EventID)
		}
		if ev.Role == event.RoleUser && !seen[ev.EventID] {
			t.Errorf("%s: no result", ev.EventID)
		}
	}
	if n := e.QueueDepth(t, e.DLQURL); n != 0 {
		t.Errorf("%d messages in the dead-letter queue", n)
	}
	w.waitVars(t, resultTimeout, "the breaker to close", func(v map[string]any) bool { return v["breaker"] == "closed" })
	if v := w.vars(t); v["breaker_cause"] != nil {
		t.Errorf("closed breaker still names a cause: %v", v["breaker_cause"])
	}
}
