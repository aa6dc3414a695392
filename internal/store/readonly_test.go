package store

import (
	"context"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// items makes one batch item per event, for sendBatch.
func items(t *testing.T, ctx context.Context, st *Store, evs ...event.Event) []*batchItem {
	t.Helper()
	out := make([]*batchItem, len(evs))
	for i, ev := range evs {
		obj, err := st.messageObject(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &batchItem{obj: obj, ctx: ctx, done: make(chan error, 1)}
	}
	return out
}

// TestReadOnlyShard runs against a real read-only shard (set through
// Weaviate's shard status API, as an operator or a full disk does), on both
// paths. First the premise, Weaviate v1.35.2's own behaviour: a batch
// request to a read-only shard comes back with an error on the shard's first
// object only, the others look written. Then the rule: no object of that
// request counts as stored, each fails with KindReadOnly (a lasting fault,
// transient), and nothing was written; reads and the other collection keep
// working; once the shard is READY again the same writes succeed.
func TestReadOnlyShard(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{})
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := testCtx(t, 2*time.Minute)
			st := newStoreAt(t, w, b.grpc, nil)
			if err := st.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			chat := chatID(t)
			putAll(t, st, msg(chat, "before", event.RoleUser, 0, "stored before the shard went read-only"))
			if _, err := w.SetShardStatus(ctx, MessagesCollection, "READONLY", ""); err != nil {
				t.Fatal(err)
			}
			during := []event.Event{
				msg(chat, "d1", event.RoleUser, 1, "first of the batch"),
				msg(chat, "d2", event.RoleUser, 2, "second of the batch"),
				msg(chat, "d3", event.RoleAssistant, 3, "third of the batch"),
			}

			// The premise: Weaviate's reply names the first object only.
			objErrs, err := st.path().batch(ctx, items(t, ctx, st, during...))
			if err != nil {
				t.Fatal(err)
			}
			if objErrs[0] == nil || objErrs[1] != nil || objErrs[2] != nil {
				t.Fatalf("Weaviate's reply for a read-only shard: %v; the rule relies on an error on the first object only "+
					"(if Weaviate now reports every object, the rule still holds but the package doc is out of date)", objErrs)
			}
			t.Logf("Weaviate's reply: object 0: %v; objects 1, 2: no error", objErrs[0])

			// The rule.
			its := items(t, ctx, st, during...)
			st.sendBatch(ctx, its)
			for i, it := range its {
				err := <-it.done
				if KindOf(err) != KindReadOnly || !IsLasting(err) || !IsFault(err) || !isTransient(err) {
					t.Errorf("object %d of a batch to a read-only shard: %v, want a transient KindReadOnly", i, err)
				}
			}
			if err := st.Put(ctx, msg(chat, "d4", event.RoleUser, 4, "alone")); KindOf(err) != KindReadOnly {
				t.Errorf("Put to a read-only shard: %v, want KindReadOnly", err)
			}
			if n := countObjects(t, st, MessagesCollection, chat); n != 1 {
				t.Errorf("%d objects in the chat, want only the one from before", n)
			}
			if h, err := st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 5); err != nil || len(h) != 1 {
				t.Errorf("history while read-only: %v, %v; reads keep working", eventIDs(h), err)
			}
			if err := st.SetMuted(ctx, event.Event{EventID: "m", ChatID: chat, Type: event.TypeMute}); err != nil {
				t.Errorf("the other collection is writable: %v", err)
			}

			if _, err := w.SetShardStatus(ctx, MessagesCollection, "READY", ""); err != nil {
				t.Fatal(err)
			}
			putAll(t, st, during...)
			if n := countObjects(t, st, MessagesCollection, chat); n != 4 {
				t.Errorf("%d objects after READY, want 4", n)
			}
		})
	}
}

func isTransient(err error) bool {
	e := asError(err)
	return e != nil && e.Transient()
}
