package store

import (
	"context"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// TestWeaviateDown: with the server killed, every call fails quickly (well
// before its deadline) with a transient KindUnavailable error; after a
// restart the same Store works again, with the data written before the kill.
func TestWeaviateDown(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{})
	stores := map[string]*Store{}
	for _, b := range backends {
		stores[b.name] = newStoreAt(t, w, b.grpc, nil)
	}
	ctx := testCtx(t, 2*time.Minute)
	if err := stores["grpc"].EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	chat := chatID(t)
	for _, st := range stores {
		if err := st.Put(ctx, msg(chat, "before", event.RoleUser, 0, "written before the outage")); err != nil {
			t.Fatal(err)
		}
		if _, err := st.History(ctx, chat, event.RoleUser, t0, 1); err != nil {
			t.Fatal(err) // connections are open and pooled when the server dies
		}
	}

	w.Kill()
	for name, st := range stores {
		calls := map[string]func(context.Context) error{
			"history":  func(ctx context.Context) error { _, err := st.History(ctx, chat, event.RoleUser, t0, 5); return err },
			"relevant": func(ctx context.Context) error { _, err := st.Relevant(ctx, chat, "outage", t0, 5); return err },
			"muted":    func(ctx context.Context) error { _, err := st.Muted(ctx, chat, t0); return err },
			"put":      func(ctx context.Context) error { return st.Put(ctx, msg(chat, "during", event.RoleUser, 1, "x")) },
			"ready":    st.Ready,
		}
		for call, f := range calls {
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			start := time.Now()
			err := f(callCtx)
			took := time.Since(start)
			cancel()
			if KindOf(err) != KindUnavailable || !IsOutage(err) {
				t.Errorf("%s %s with Weaviate down: %v, want a transient KindUnavailable error", name, call, err)
			}
			if took > 3*time.Second {
				t.Errorf("%s %s took %v to fail, want fast failure", name, call, took)
			}
		}
	}

	if err := w.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for name, st := range stores {
		// The gRPC connection reconnects within its back-off (at most 2s):
		// wait until it says it is ready. REST connects per call.
		if g, ok := st.path().(*grpcPath); ok {
			reconnect, cancel := context.WithTimeout(ctx, 30*time.Second)
			up := g.reachable(reconnect)
			cancel()
			if !up {
				t.Fatalf("%s: not reconnected 30s after the restart", name)
			}
		}
		if _, err := st.History(ctx, chat, event.RoleUser, t0, 5); err != nil {
			t.Fatalf("%s: history once reconnected after the restart: %v", name, err)
		}
		if err := st.Put(ctx, msg(chat, "after-"+name, event.RoleUser, 2, "written after the outage")); err != nil {
			t.Fatalf("%s put after restart: %v", name, err)
		}
		if err := st.Ready(ctx); err != nil {
			t.Fatalf("%s ready after restart: %v", name, err)
		}
	}
	for name, st := range stores {
		got, err := st.Relevant(ctx, chat, "outage", t0.Add(time.Hour), 5)
		if err != nil || len(got) != 3 {
			t.Fatalf("%s relevant after restart: %v, %v; want the message from before and the two from after", name, eventIDs(got), err)
		}
	}
}
