package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// objectProperties reads one object of chat's by id over REST, in chat's
// tenant for a message, as Weaviate's object store has it.
func objectProperties(t *testing.T, st *Store, collection, chat, id string) (map[string]any, bool) {
	t.Helper()
	query := ""
	if collection == MessagesCollection {
		tenant, err := st.tenantOf(testCtx(t, 10*time.Second), chat)
		if err != nil {
			t.Fatal(err)
		}
		query = target{collection: collection, tenant: tenant}.query()
	}
	status, body, err := st.rest(testCtx(t, 10*time.Second), http.MethodGet, "/objects/"+collection+"/"+id+query)
	if err != nil {
		t.Fatal(err)
	}
	switch status {
	case http.StatusNotFound:
		return nil, false
	case http.StatusOK:
	default:
		t.Fatalf("GET %s/%s: %d %s", collection, id, status, body)
	}
	var obj struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.Properties, true
}

// TestPutMessagesIsPut: a batch of PutMessages stores each event as Put
// would (the same id, the same properties: history and relevance find it,
// and Put of the same event later leaves one object, unchanged); an event
// that is no message is refused alone.
func TestPutMessagesIsPut(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			ctx := testCtx(t, 30*time.Second)
			chat := chatID(t)
			evs := []event.Event{
				msg(chat, "e-1", event.RoleUser, 0, "Where is my order S00042?"),
				msg(chat, "e-2", event.RoleAssistant, 1, "Order S00042 ships on Friday."),
				{EventID: "m-1", ChatID: chat, Type: event.TypeMute},
				msg(chat, "e-3", event.RoleUser, 2, "Thanks, and the invoice?"),
			}
			errs := st.PutMessages(ctx, evs)
			for i, err := range errs {
				if (err != nil) != (i == 2) {
					t.Fatalf("event %d: %v; want only the mute refused", i, err)
				}
			}
			if KindOf(errs[2]) != KindRejected {
				t.Errorf("the mute: %v, want KindRejected", errs[2])
			}
			if n := countObjects(t, st, MessagesCollection, chat); n != 3 {
				t.Fatalf("%d objects, want 3", n)
			}
			h, err := st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 10)
			if err != nil || fmt.Sprint(eventIDs(h)) != "[e-1 e-3]" {
				t.Fatalf("user history %v, %v", eventIDs(h), err)
			}
			rel, err := st.Relevant(ctx, chat, "does it ship on friday", t0.Add(time.Hour), 5)
			if err != nil || len(rel) == 0 || rel[0].EventID != "e-2" {
				t.Fatalf("relevant %v, %v; want e-2 first", eventIDs(rel), err)
			}
			imported, ok := objectProperties(t, st, MessagesCollection, chat, MessageID(chat, "e-2"))
			if !ok {
				t.Fatal("e-2 not found by its id")
			}
			if err := st.Put(ctx, evs[1]); err != nil {
				t.Fatal(err)
			}
			received, _ := objectProperties(t, st, MessagesCollection, chat, MessageID(chat, "e-2"))
			if !reflect.DeepEqual(imported, received) {
				t.Errorf("properties after PutMessages %v\nafter Put of the same event %v", imported, received)
			}
			if n := countObjects(t, st, MessagesCollection, chat); n != 3 {
				t.Errorf("%d objects after Put of an imported event, want 3", n)
			}
		})
	}
}

// TestErase: for each layout of the messages collection (64 tenants, and
// none: a collection made before tenants), on a Weaviate that deletes at
// most 20 objects per request (QUERY_MAXIMUM_RESULTS, 10,000 by default),
// so every delete is a loop of requests: forgetting a chat, and retention.
// Each case starts from new collections.
func TestErase(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{Env: []string{"QUERY_MAXIMUM_RESULTS=20"}})
	for _, layout := range []struct {
		name    string
		tenants int // Config.Tenants
	}{{"tenants", 0}, {"without tenants", -1}} {
		fresh := func(t *testing.T) *Store {
			t.Helper()
			ctx := testCtx(t, time.Minute)
			st := newStoreAt(t, w, true, func(c *Config) { c.Tenants = layout.tenants })
			for _, c := range []string{MessagesCollection, StateCollection} {
				if status, body, err := st.rest(ctx, http.MethodDelete, "/schema/"+c); err != nil || status != http.StatusOK {
					t.Fatalf("drop %s: %d %s %v", c, status, body, err)
				}
			}
			if err := st.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			return st
		}
		t.Run(layout.name+"/forget a chat", func(t *testing.T) { forgetAChat(t, fresh(t)) })
		t.Run(layout.name+"/retention", func(t *testing.T) { retention(t, fresh(t)) })
	}
}

// sameTenant is a chat id that is not chat and lives in chat's tenant.
func sameTenant(t *testing.T, st *Store, chat string) string {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	want, err := st.tenantOf(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		other := fmt.Sprintf("%s-neighbour-%d", chat, i)
		if got, err := st.tenantOf(ctx, other); err != nil || got == want {
			if err != nil {
				t.Fatal(err)
			}
			return other
		}
	}
}

// forgetAChat: a chat's 25 messages and its state (entries and head) are
// counted (one request, in its tenant), deleted and gone when Weaviate is
// read directly; a chat in the same tenant and one elsewhere keep all of
// their own.
func forgetAChat(t *testing.T, st *Store) {
	ctx := testCtx(t, time.Minute)
	gone := chatID(t)
	kept := []string{sameTenant(t, st, gone), chatID(t)}
	for _, chat := range append([]string{gone}, kept...) {
		var evs []event.Event
		for i := range 25 {
			evs = append(evs, msg(chat, fmt.Sprintf("e-%02d", i), []event.Role{event.RoleUser, event.RoleAssistant}[i%2], i, "order S00042 word"+fmt.Sprint(i)))
		}
		for _, err := range st.PutMessages(ctx, evs) {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, typ := range []event.Type{event.TypeMute, event.TypeUnmute, event.TypeMute} {
			if err := st.SetMuted(ctx, event.Event{EventID: fmt.Sprintf("s-%d", i), ChatID: chat, Type: typ, SentAt: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls := st.Stats().Deletes
	if n, err := st.CountMessages(ctx, Selection{ChatID: gone}); err != nil || n != 25 {
		t.Fatalf("count messages: %d, %v; want 25", n, err)
	}
	if c := st.Stats().Deletes - calls; c != 1 {
		t.Errorf("counting a chat's messages took %d requests, want 1 (its tenant alone)", c)
	}
	if n, err := st.CountState(ctx, gone); err != nil || n != 4 {
		t.Fatalf("count state: %d, %v; want 3 entries and the head", n, err)
	}
	var progress []int64
	if n, err := st.DeleteMessages(ctx, Selection{ChatID: gone}, func(n int64) { progress = append(progress, n) }); err != nil || n != 25 {
		t.Fatalf("delete messages: %d, %v; want 25", n, err)
	}
	if len(progress) < 2 || progress[len(progress)-1] != 25 {
		t.Errorf("progress %v, want at least two requests (20 a request), ending at 25", progress)
	}
	if n, err := st.DeleteState(ctx, gone); err != nil || n != 4 {
		t.Fatalf("delete state: %d, %v; want 4", n, err)
	}
	// Read directly: an Aggregate count by chat_id, and the head and a
	// message by their ids.
	for _, c := range []string{MessagesCollection, StateCollection} {
		if n := countObjects(t, st, c, gone); n != 0 {
			t.Errorf("%d objects of the forgotten chat left in %s", n, c)
		}
	}
	if _, ok := objectProperties(t, st, StateCollection, gone, StateID(gone)); ok {
		t.Error("the forgotten chat's state head is still there")
	}
	if _, ok := objectProperties(t, st, MessagesCollection, gone, MessageID(gone, "e-00")); ok {
		t.Error("a forgotten message is still there by its id")
	}
	if n, err := st.CountMessages(ctx, Selection{ChatID: gone}); err != nil || n != 0 {
		t.Errorf("count after: %d, %v", n, err)
	}
	if n, err := st.CountState(ctx, gone); err != nil || n != 0 {
		t.Errorf("state count after: %d, %v", n, err)
	}
	if muted, err := st.Muted(ctx, gone, t0.Add(5*time.Hour)); err != nil || muted {
		t.Errorf("forgotten chat muted: %v, %v; want as never muted", muted, err)
	}
	// The other chats are whole.
	for _, chat := range kept {
		if n := countObjects(t, st, MessagesCollection, chat); n != 25 {
			t.Errorf("chat %s has %d messages, want 25", chat, n)
		}
		if n, err := st.CountState(ctx, chat); err != nil || n != 4 {
			t.Errorf("the state of chat %s: %d, %v", chat, n, err)
		}
		if muted, err := st.Muted(ctx, chat, t0.Add(5*time.Hour)); err != nil || !muted {
			t.Errorf("chat %s muted: %v, %v; want true", chat, muted, err)
		}
	}
	// Nothing to forget is no error.
	if n, err := st.DeleteState(ctx, gone); err != nil || n != 0 {
		t.Errorf("delete state again: %d, %v", n, err)
	}
	if n, err := st.DeleteMessages(ctx, Selection{ChatID: gone}, nil); err != nil || n != 0 {
		t.Errorf("delete messages again: %d, %v", n, err)
	}
	if _, err := st.DeleteMessages(ctx, Selection{}, nil); KindOf(err) != KindRejected {
		t.Errorf("an empty selection: %v, want KindRejected (never every message)", err)
	}
}

// retention: the messages sent before a time are deleted in a loop of
// requests, of one chat (in its tenant) or of every chat (in every
// tenant), and exactly those: the ones sent at or after it stay, and so
// does the state.
func retention(t *testing.T, st *Store) {
	ctx := testCtx(t, 3*time.Minute)
	// Older history, after a gap: 90 days before the others.
	var old []event.Event
	for m := range 5 {
		ev := msg("r-old", fmt.Sprintf("o-%d", m), event.RoleUser, m, "hello")
		ev.SentAt = ev.SentAt.Add(-90 * 24 * time.Hour)
		old = append(old, ev)
	}
	for _, err := range st.PutMessages(ctx, old) {
		if err != nil {
			t.Fatal(err)
		}
	}
	chats := []string{"r-1", "r-2", "r-3"}
	for _, chat := range chats {
		var evs []event.Event
		for m := range 60 { // minutes 0-59
			evs = append(evs, msg(chat, fmt.Sprintf("e-%02d", m), event.RoleUser, m, "hello"))
		}
		for _, err := range st.PutMessages(ctx, evs) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := st.SetMuted(ctx, event.Event{EventID: "mute", ChatID: chat, Type: event.TypeMute, SentAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := st.facts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	targets := len(f.messageTenants(""))
	used := map[string]bool{}
	for _, chat := range append(chats, "r-old") {
		used[f.tenant(chat)] = true
	}
	if f.tenants > 0 && len(used) < 2 {
		t.Fatalf("the chats are all in tenant %v: the walk over the tenants is not tested", used)
	}
	remaining := func(chat string) []string {
		t.Helper()
		h, err := st.History(ctx, chat, event.RoleUser, t0.Add(2*time.Hour), 15)
		if err != nil {
			t.Fatal(err)
		}
		return eventIDs(h)
	}
	ids := func(from, to int) string {
		var out []string
		for m := from; m < to; m++ {
			out = append(out, fmt.Sprintf("e-%02d", m))
		}
		return fmt.Sprint(out)
	}

	// One chat: before minute 5, in its tenant alone.
	one := Selection{ChatID: "r-2", Before: t0.Add(5 * time.Minute)}
	calls := st.Stats().Deletes
	if n, err := st.CountMessages(ctx, one); err != nil || n != 5 {
		t.Fatalf("count %s: %d, %v", one, n, err)
	}
	if c := st.Stats().Deletes - calls; c != 1 {
		t.Errorf("counting %s took %d requests, want 1", one, c)
	}
	if n, err := st.DeleteMessages(ctx, one, nil); err != nil || n != 5 {
		t.Fatalf("delete %s: %d, %v", one, n, err)
	}
	// Every chat: before minute 50, 20 per request, in every tenant.
	all := Selection{Before: t0.Add(50 * time.Minute)}
	const want = 50 + 45 + 50 + 5
	calls = st.Stats().Deletes
	if n, err := st.CountMessages(ctx, all); err != nil || n != want {
		t.Fatalf("count %s: %d, %v; want 50+45+50 and the 5 older ones", all, n, err)
	}
	if c := st.Stats().Deletes - calls; c != uint64(targets) {
		t.Errorf("counting %s took %d requests, want %d (one per tenant)", all, c, targets)
	}
	var progress []int64
	calls = st.Stats().Deletes
	if n, err := st.DeleteMessages(ctx, all, func(n int64) { progress = append(progress, n) }); err != nil || n != want {
		t.Fatalf("delete %s: %d, %v", all, n, err)
	}
	// At most 20 a request; an empty tenant costs two (its first window,
	// and whether anything older is left); not one request per message.
	empty := targets - len(used)
	if c := int(st.Stats().Deletes - calls); c < want/20 || c > 2*empty+want/2 {
		t.Errorf("%d requests to delete %d messages at 20 a request in %d tenants (%d empty), want between %d and %d", c, want, targets, empty, want/20, 2*empty+want/2)
	}
	if !slices.IsSorted(progress) || progress[len(progress)-1] != want {
		t.Errorf("progress %v, want it rising to %d", progress, want)
	}
	if n := countObjects(t, st, MessagesCollection, "r-old"); n != 0 {
		t.Errorf("%d of the older history left", n)
	}
	for _, chat := range chats {
		if got := fmt.Sprint(remaining(chat)); got != ids(50, 60) {
			t.Errorf("chat %s keeps %s, want %s", chat, got, ids(50, 60))
		}
		if muted, err := st.Muted(ctx, chat, t0.Add(time.Hour)); err != nil || !muted {
			t.Errorf("chat %s muted %v, %v: retention keeps the state", chat, muted, err)
		}
	}
	if n, err := st.CountMessages(ctx, all); err != nil || n != 0 {
		t.Errorf("count after: %d, %v", n, err)
	}
}

// TestEraseOnAClosedStore fails at once.
func TestEraseOnAClosedStore(t *testing.T) {
	t.Parallel()
	st := newStore(t, false)
	st.Close()
	ctx := context.Background()
	if _, err := st.CountMessages(ctx, Selection{ChatID: "c"}); KindOf(err) != KindClosed {
		t.Errorf("count: %v", err)
	}
	if _, err := st.DeleteState(ctx, "c"); KindOf(err) != KindClosed {
		t.Errorf("delete state: %v", err)
	}
	if errs := st.PutMessages(ctx, []event.Event{msg("c", "e", event.RoleUser, 0, "x")}); KindOf(errs[0]) != KindClosed {
		t.Errorf("put messages: %v", errs[0])
	}
}
