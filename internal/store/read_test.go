package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// msg is a message event of chat at minute m.
func msg(chat, id string, role event.Role, m int, text string) event.Event {
	return event.Event{EventID: id, ChatID: chat, Role: role, Text: text,
		SentAt: t0.Add(time.Duration(m) * time.Minute), UserID: "u-1", Channel: "web"}
}

func putAll(t *testing.T, st *Store, evs ...event.Event) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	errs := make(chan error, len(evs))
	for _, ev := range evs {
		go func() { errs <- st.Put(ctx, ev) }()
	}
	for range evs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func eventIDs(msgs []event.ContextMessage) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.EventID
	}
	return ids
}

// TestHistory: the newest `limit` messages of one role with sent_at <=
// before, oldest first, with their content; the role filter, the inclusive
// before bound and the limit hold.
func TestHistory(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat := chatID(t)
			var evs []event.Event
			for i := range 12 { // user at even minutes, assistant at odd ones
				evs = append(evs,
					msg(chat, fmt.Sprint("u", i), event.RoleUser, 2*i, fmt.Sprint("user says ", i)),
					msg(chat, fmt.Sprint("a", i), event.RoleAssistant, 2*i+1, fmt.Sprint("assistant says ", i)))
			}
			putAll(t, st, evs...)
			ctx := testCtx(t, 30*time.Second)

			// before = minute 18 is u9's time: u9 is included, u10 and u11 are not.
			got, err := st.History(ctx, chat, event.RoleUser, t0.Add(18*time.Minute), 5)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"u5", "u6", "u7", "u8", "u9"}; !slices.Equal(eventIDs(got), want) {
				t.Fatalf("user history = %v, want %v", eventIDs(got), want)
			}
			first := got[0]
			if first.Role != event.RoleUser || first.Text != "user says 5" || !first.SentAt.Equal(t0.Add(10*time.Minute)) || first.Score != nil {
				t.Errorf("first message = %+v", first)
			}

			// Two newer user messages fit the slack: one search. Three newer
			// assistant messages crowd it: the search is made again with the
			// sent_at filter, with the same answer as a filtered search.
			if r := st.Stats().Refetched; r != 0 {
				t.Errorf("%d searches made again, want none", r)
			}
			got, err = st.History(ctx, chat, event.RoleAssistant, t0.Add(18*time.Minute), 3)
			if err != nil {
				t.Fatal(err)
			}
			if r := st.Stats().Refetched; r != 1 {
				t.Errorf("%d searches made again, want 1", r)
			}
			if want := []string{"a6", "a7", "a8"}; !slices.Equal(eventIDs(got), want) {
				t.Fatalf("assistant history = %v, want %v", eventIDs(got), want)
			}
			for _, m := range got {
				if m.Role != event.RoleAssistant {
					t.Errorf("assistant history has %+v", m)
				}
			}

			got, err = st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 100)
			if err != nil || len(got) != 12 {
				t.Fatalf("all user history: %d messages, %v; want 12", len(got), err)
			}
			got, err = st.History(ctx, chat, event.RoleUser, t0.Add(-time.Minute), 10)
			if err != nil || len(got) != 0 {
				t.Fatalf("history before the first message: %v, %v; want none", eventIDs(got), err)
			}
			got, err = st.History(ctx, chatID(t), event.RoleUser, t0.Add(time.Hour), 10)
			if err != nil || len(got) != 0 {
				t.Fatalf("history of an unknown chat: %v, %v; want none", eventIDs(got), err)
			}
			calls := st.Stats().History
			if got, err := st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 0); err != nil || len(got) != 0 || got == nil {
				t.Fatalf("limit 0: %v, %v; want an empty list", got, err)
			}
			if st.Stats().History != calls {
				t.Error("limit 0 cost a Weaviate call")
			}
		})
	}
}

// TestChatIDIsMatchedWhole: a chat id that is a prefix or a word of another
// never sees the other chat's messages (tokenization field).
func TestChatIDIsMatchedWhole(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			base := chatID(t)
			chats := []string{base + "-user-1", base + "-user-1-admin", base + "-user", "admin-" + base + "-user-1", base + "-user-1.x"}
			var evs []event.Event
			for i, c := range chats {
				evs = append(evs, msg(c, fmt.Sprint("e", i), event.RoleUser, i, "shared words about invoices"))
			}
			putAll(t, st, evs...)
			ctx := testCtx(t, 30*time.Second)
			for i, c := range chats {
				h, err := st.History(ctx, c, event.RoleUser, t0.Add(time.Hour), 10)
				if err != nil {
					t.Fatal(err)
				}
				r, err := st.Relevant(ctx, c, "shared invoices", t0.Add(time.Hour), 10)
				if err != nil {
					t.Fatal(err)
				}
				want := []string{fmt.Sprint("e", i)}
				if !slices.Equal(eventIDs(h), want) || !slices.Equal(eventIDs(r), want) {
					t.Errorf("chat %s: history %v, relevant %v; want only %v", c, eventIDs(h), eventIDs(r), want)
				}
			}
		})
	}
}

// TestRelevant: BM25 picks the older message about the same thing, best
// first with scores; it stays within the chat and within before.
func TestRelevant(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat, other := chatID(t), chatID(t)
			putAll(t, st,
				msg(chat, "weather", event.RoleUser, 0, "what is the weather like in Berlin today"),
				msg(chat, "invoice", event.RoleUser, 1, "my invoice INV/2026/00017 is overdue, please resend the invoice"),
				msg(chat, "reply", event.RoleAssistant, 2, "I resent the invoice to your email"),
				msg(chat, "pizza", event.RoleUser, 3, "where can I order pizza"),
				msg(chat, "later", event.RoleUser, 30, "invoice invoice overdue invoice again"),
				msg(other, "leak", event.RoleUser, 1, "invoice overdue invoice overdue invoice"),
			)
			ctx := testCtx(t, 30*time.Second)
			got, err := st.Relevant(ctx, chat, "Is my INVOICE still overdue?", t0.Add(10*time.Minute), 5)
			if err != nil {
				t.Fatal(err)
			}
			ids := eventIDs(got)
			if len(got) < 2 || ids[0] != "invoice" || ids[1] != "reply" {
				t.Fatalf("relevant = %v, want invoice first, then reply", ids)
			}
			for i, m := range got {
				switch {
				case m.EventID == "later":
					t.Error("a message after before came back")
				case m.EventID == "leak":
					t.Error("another chat's message came back")
				case m.Score == nil || *m.Score <= 0:
					t.Errorf("%s has no score", m.EventID)
				case i > 0 && *m.Score > *got[i-1].Score:
					t.Errorf("not best first: %v", ids)
				}
			}
			if got[0].Role != event.RoleUser || got[1].Role != event.RoleAssistant || got[0].Text == "" || got[0].SentAt.IsZero() {
				t.Errorf("content: %+v %+v", got[0], got[1])
			}
			if got, err := st.Relevant(ctx, chat, "invoice", t0.Add(10*time.Minute), 1); err != nil || len(got) != 1 {
				t.Errorf("limit 1: %v, %v", eventIDs(got), err)
			}

			calls := st.Stats().Relevant
			got, err = st.Relevant(ctx, chat, "🙂 !!! ???", t0.Add(time.Hour), 5)
			if err != nil || got == nil || len(got) != 0 {
				t.Fatalf("text without words: %v, %v; want an empty list", got, err)
			}
			if st.Stats().Relevant != calls {
				t.Error("a text without words cost a Weaviate call")
			}
		})
	}
}
