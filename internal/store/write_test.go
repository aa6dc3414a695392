package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"
)

// countObjects counts the chat's objects in a collection with an Aggregate
// query, independent of the read paths under test.
func countObjects(t *testing.T, st *Store, collection, chat string) int {
	t.Helper()
	tenant := ""
	if collection == MessagesCollection {
		var err error
		if tenant, err = st.tenantOf(testCtx(t, 10*time.Second), chat); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := st.client.GraphQL().Aggregate().
		WithClassName(collection).
		WithTenant(tenant).
		WithWhere(filters.Where().WithPath([]string{propChatID}).WithOperator(filters.Equal).WithValueText(chat)).
		WithFields(graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}}).
		Do(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Errors) > 0 {
		t.Fatal(resp.Errors[0].Message)
	}
	rows := resp.Data["Aggregate"].(map[string]any)[collection].([]any)
	return int(rows[0].(map[string]any)["meta"].(map[string]any)["count"].(float64))
}

// TestPutIsIdempotent: the same event stored again, one after the other and
// many times at once (several landing in one batch), is one object, with the
// content of the event.
func TestPutIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat := chatID(t)
			ev := msg(chat, "e-1", event.RoleUser, 0, "hello once")
			ctx := testCtx(t, 30*time.Second)
			for range 2 {
				if err := st.Put(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for range 20 {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- st.Put(ctx, ev) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := countObjects(t, st, MessagesCollection, chat); n != 1 {
				t.Fatalf("%d objects after 22 deliveries of one event, want 1", n)
			}
			h, err := st.History(ctx, chat, event.RoleUser, t0, 10)
			if err != nil || len(h) != 1 || h[0].Text != "hello once" || h[0].EventID != "e-1" {
				t.Fatalf("history %+v, %v", h, err)
			}
			if s := st.Stats(); s.Objects != 22 || s.Batches > 22 || s.Batches == 0 {
				t.Errorf("stats %+v: want 22 objects in at most 22 batches", s)
			}
		})
	}
}

// TestPutValidates: events that are not messages are refused without a call.
func TestPutValidates(t *testing.T) {
	t.Parallel()
	st := newStore(t, true)
	ctx := testCtx(t, 10*time.Second)
	for _, ev := range []event.Event{
		{EventID: "m", ChatID: "c", Type: event.TypeMute},
		{EventID: "", ChatID: "c", Text: "x"},
	} {
		if err := st.Put(ctx, ev); KindOf(err) != KindRejected {
			t.Errorf("Put(%+v) = %v, want KindRejected", ev, err)
		}
	}
	if err := st.SetMuted(ctx, event.Event{EventID: "m", ChatID: "c", Type: event.TypeMessage}); KindOf(err) != KindRejected {
		t.Errorf("SetMuted(message) = %v, want KindRejected", err)
	}
	if st.Stats().Batches != 0 {
		t.Error("refused events reached Weaviate")
	}
}

// TestBatchPerObjectErrors: in one real batch request, an object Weaviate
// refuses (its shard writable) fails its own caller as rejected, and the
// others of that request are not confirmed (transient): Weaviate reports a
// whole shard's failure on one object only, so an error on one object leaves
// the others unknown (see TestReadOnlyShard). They were stored here, and a
// retry, an idempotent replace, is harmless.
func TestBatchPerObjectErrors(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat := chatID(t)
			tenant, err := st.tenantOf(testCtx(t, 10*time.Second), chat)
			if err != nil {
				t.Fatal(err)
			}
			good := func(id string) writeObject {
				return writeObject{collection: MessagesCollection, tenant: tenant, id: MessageID(chat, id), props: objectProps{
					propChatID: chat, propEventID: id, propRole: "user", propText: "fine", propSentAt: t0.Format(time.RFC3339Nano)}}
			}
			bad := good("bad")
			bad.props["no_such_property"] = "x" // auto-schema is off: refused
			ctx := context.Background()
			items := []*batchItem{
				{obj: good("g1"), ctx: ctx, done: make(chan error, 1)},
				{obj: bad, ctx: ctx, done: make(chan error, 1)},
				{obj: good("g2"), ctx: ctx, done: make(chan error, 1)},
			}
			st.sendBatch(testCtx(t, 10*time.Second), items)
			for i, it := range items {
				err := <-it.done
				if i == 1 {
					if KindOf(err) != KindRejected {
						t.Errorf("bad object: %v, want KindRejected", err)
					}
				} else if KindOf(err) != KindUnconfirmed || !isTransient(err) || IsFault(err) {
					t.Errorf("good object %d: %v, want a transient KindUnconfirmed that the breaker does not count", i, err)
				}
			}
			if n := countObjects(t, st, MessagesCollection, chat); n != 2 {
				t.Errorf("%d objects stored, want the 2 good ones", n)
			}
		})
	}
}

// TestMuted: never muted, muted, unmuted, muted until a time (counts before
// it, not from it on), a mute that already ended, and a mute for good again.
func TestMuted(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat := chatID(t)
			ctx := testCtx(t, 30*time.Second)
			now := time.Now().UTC()
			check := func(step string, at time.Time, want bool) {
				t.Helper()
				got, err := st.Muted(ctx, chat, at)
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if got != want {
					t.Fatalf("%s: muted = %v, want %v", step, got, want)
				}
			}
			set := func(typ event.Type, until *time.Time) {
				t.Helper()
				if err := st.SetMuted(ctx, event.Event{EventID: "m-" + string(typ), ChatID: chat, Type: typ, Until: until}); err != nil {
					t.Fatal(err)
				}
			}
			check("never muted", now, false)
			set(event.TypeMute, nil)
			check("muted", now, true)
			check("muted, far future", now.Add(1000*time.Hour), true)
			set(event.TypeUnmute, nil)
			check("unmuted", now, false)
			until := now.Add(time.Hour)
			set(event.TypeMute, &until)
			check("muted until, before", now, true)
			check("muted until, at until", until, false)
			check("muted until, after", until.Add(time.Second), false)
			past := now.Add(-time.Minute)
			set(event.TypeMute, &past)
			check("mute already over", now, false)
			set(event.TypeMute, nil)
			check("muted for good again (until cleared)", now.Add(2*time.Hour), true)
			// One entry per event: m-mute was applied four times.
			if n := countObjects(t, st, StateCollection, chat); n != 2 {
				t.Errorf("%d state entries, want 2 (m-mute and m-unmute)", n)
			}
			other := chatID(t)
			if got, err := st.Muted(ctx, other, now); err != nil || got {
				t.Errorf("another chat: %v, %v", got, err)
			}
		})
	}
}

// TestClosed: every call after Close fails with KindClosed.
func TestClosed(t *testing.T) {
	t.Parallel()
	st, err := New(Config{URL: shared.URL, GRPCAddr: shared.GRPCAddr})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st.Close()
	ctx := testCtx(t, 10*time.Second)
	_, err1 := st.History(ctx, "c", event.RoleUser, t0, 1)
	_, err2 := st.Relevant(ctx, "c", "x", t0, 1)
	_, err3 := st.Muted(ctx, "c", t0)
	err4 := st.Put(ctx, msg("c", "e", event.RoleUser, 0, "x"))
	err5 := st.SetMuted(ctx, event.Event{EventID: "m", ChatID: "c", Type: event.TypeMute})
	err6 := st.Ready(ctx)
	err7 := st.EnsureSchema(ctx)
	for i, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
		if KindOf(err) != KindClosed || !errors.Is(err, ErrClosed) {
			t.Errorf("call %d after Close: %v", i+1, err)
		}
	}
}
