package store

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// TestReindexRepairsALostIndexEntry makes a real gap in Weaviate's
// inverted index, the kind a SIGKILL can leave (each LSM bucket recovers
// its own write-ahead log; README, Faults): messages are written, the server
// is SIGKILLed while they are still in the memtables' logs, and the log of
// one bucket, the chat_id filter's, is lost before the restart. The objects
// are all there by id; the chat_id filter finds none. Unfindable says so,
// for both searches; storing the same event again changes nothing (Weaviate
// skips a replace of an identical object); Reindex brings every entry back.
func TestReindexRepairsALostIndexEntry(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{Env: devstack.HoldWritesEnv})
	ctx := testCtx(t, 3*time.Minute)
	setup := newStoreAt(t, w, false, nil)
	if err := setup.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	chat := chatID(t)
	evs := []event.Event{
		msg(chat, "u1", event.RoleUser, 0, "Where is order S00042?"),
		msg(chat, "a1", event.RoleAssistant, 1, "It ships tomorrow morning."),
		msg(chat, "u2", event.RoleUser, 2, "Can you send the invoice too?"),
	}
	putAll(t, setup, evs...)
	setup.Close()

	if n, err := w.CrashLosingLog(ctx, MessagesCollection, propChatID); err != nil || n == 0 {
		t.Fatalf("crash losing the chat_id log: %d logs removed, %v", n, err)
	}

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newStoreAt(t, w, b.grpc, nil)
			scanned := scanChat(t, st, chat)
			if len(scanned) != len(evs) {
				t.Fatalf("the object store holds %d of the chat's %d messages", len(scanned), len(evs))
			}
			missing, err := st.Unfindable(ctx, chat, scanned)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range scanned {
				if !slices.Equal(missing[m.ID], []string{SearchHistory, SearchRelevance}) {
					t.Errorf("%s: missed by %v, want history and relevance (the chat_id entries are gone)", m.EventID, missing[m.ID])
				}
			}
			if h, err := st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 10); err != nil || len(h) != 0 {
				t.Errorf("history: %v, %v; want nothing while the entries are lost", eventIDs(h), err)
			}
		})
	}

	st := newStoreAt(t, w, true, nil)
	putAll(t, st, evs...) // what a redelivery does: the same object again
	if missing, err := st.Unfindable(ctx, chat, scanChat(t, st, chat)); err != nil || len(missing) != len(evs) {
		t.Fatalf("after storing the same events again: missing %v, %v; Weaviate v1.35.2 skips an identical replace, so they should still be missing", missing, err)
	}
	for _, m := range scanChat(t, st, chat) {
		if err := st.Reindex(ctx, m.ChatID, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	scanned := scanChat(t, st, chat)
	if missing, err := st.Unfindable(ctx, chat, scanned); err != nil || len(missing) != 0 {
		t.Fatalf("after Reindex: missing %v, %v; want every message found", missing, err)
	}
	h, err := st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 10)
	if err != nil || !slices.Equal(eventIDs(h), []string{"u1", "u2"}) {
		t.Errorf("history after Reindex: %v, %v", eventIDs(h), err)
	}
	if r, err := st.Relevant(ctx, chat, "invoice", t0.Add(time.Hour), 5); err != nil || len(r) != 1 || r[0].EventID != "u2" {
		t.Errorf("relevance after Reindex: %v, %v", eventIDs(r), err)
	}
	got := readProps(t, st, chat, "a1")
	if got[propText] != evs[1].Text || got[propRole] != "assistant" || got[propChatID] != chat {
		t.Errorf("the reindexed object changed: %v", got)
	}
	if err := st.Reindex(ctx, chat, MessageID(chat, "never-stored")); !errorsIsGone(err) {
		t.Errorf("Reindex of a missing object: %v, want ErrGone", err)
	}
}

// scanChat reads the chat's messages with ScanMessages, page by page.
func scanChat(t *testing.T, st *Store, chat string) []StoredMessage {
	t.Helper()
	var out []StoredMessage
	after := ""
	for {
		page, err := st.ScanMessages(testCtx(t, 30*time.Second), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, m := range page {
			if m.ChatID == chat {
				out = append(out, m)
			}
		}
		after = page[len(page)-1].Cursor
	}
}

// readProps reads a message object's properties by its id (REST).
func readProps(t *testing.T, st *Store, chat, eventID string) map[string]any {
	t.Helper()
	tenant, err := st.tenantOf(testCtx(t, 10*time.Second), chat)
	if err != nil {
		t.Fatal(err)
	}
	status, body, err := st.rest(testCtx(t, 10*time.Second), http.MethodGet, "/objects/"+MessagesCollection+"/"+MessageID(chat, eventID)+"?tenant="+url.QueryEscape(tenant))
	if err != nil || status != http.StatusOK {
		t.Fatalf("read %s: %d %v", eventID, status, err)
	}
	var obj struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.Properties
}

func errorsIsGone(err error) bool { return errors.Is(err, ErrGone) }
