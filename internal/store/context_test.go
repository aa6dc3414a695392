package store

import (
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/tokens"
)

func counter(t testing.TB) *tokens.Counter {
	t.Helper()
	c, err := tokens.New(tokens.O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRecentWithTokens: Recent is both roles, newest limit, oldest first,
// with each text's token count as stored (and counted when read for a
// message stored without one, as before this version), on both paths.
func TestRecentWithTokens(t *testing.T) {
	t.Parallel()
	c := counter(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStoreAt(t, shared, b.grpc, func(cfg *Config) { cfg.Tokens = c })
			old := newStore(t, b.grpc) // a worker of before: no counts
			chat := chatID(t)
			putAll(t, st,
				msg(chat, "u1", event.RoleUser, 1, "Where is my order S00042?"),
				msg(chat, "a1", event.RoleAssistant, 2, "It ships on Monday."),
				msg(chat, "u2", event.RoleUser, 3, "Thanks a lot!"),
				msg(chat, "late", event.RoleUser, 9, "after the event"))
			putAll(t, old, msg(chat, "u0", event.RoleUser, 0, "an old message without a count"))
			counted := msg(chat, "pre", event.RoleUser, -1, "counted by the caller")
			counted.Tokens = 99 // the pipeline counted it already: not counted again
			putAll(t, st, counted)
			got, err := st.Recent(testCtx(t, 30*time.Second), chat, t0.Add(5*time.Minute), 3)
			if err != nil {
				t.Fatal(err)
			}
			if ids := eventIDs(got); !slices.Equal(ids, []string{"u1", "a1", "u2"}) {
				t.Fatalf("Recent = %v, want u1 a1 u2", ids)
			}
			for _, m := range got {
				if want := c.Count(m.Text); m.Tokens != want || m.Role == "" {
					t.Errorf("%s: tokens %d role %q, want %d and a role", m.EventID, m.Tokens, m.Role, want)
				}
			}
			all, err := st.Recent(testCtx(t, 30*time.Second), chat, t0.Add(5*time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 5 || all[0].EventID != "pre" || all[0].Tokens != 99 || all[1].EventID != "u0" || all[1].Tokens != c.Count(all[1].Text) {
				t.Errorf("a message counted by the caller, and one stored without a count: %+v", all)
			}
		})
	}
}

// TestFollowing: each hit's next messages within ReplyWindow, in time order;
// not the hit itself, not a message more than the window later, not the
// chat's other messages, and not another chat's.
func TestFollowing(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat, other := chatID(t), chatID(t)
			evs := []event.Event{
				msg(chat, "q1", event.RoleUser, 0, "what payment terms do we have?"),
				msg(chat, "a1", event.RoleAssistant, 1, "30 days net"),
				msg(chat, "x1", event.RoleUser, 2, "thanks"),
				msg(chat, "q2", event.RoleUser, 50, "and the deposit?"), // its reply crosses the hour
				msg(chat, "a2", event.RoleAssistant, 70, "30 EUR per keg"),
				msg(chat, "q3", event.RoleUser, 200, "anyone there?"),
				msg(chat, "a3", event.RoleAssistant, 200+61, "sorry, back now"), // more than an hour later
				msg(other, "o1", event.RoleAssistant, 1, "another chat's answer"),
			}
			// A tie: the assistant's answer stored with the same sent_at.
			tie := msg(chat, "t-a", event.RoleAssistant, 300, "same minute answer")
			evs = append(evs, msg(chat, "t-q", event.RoleUser, 300, "same minute question"), tie)
			putAll(t, st, evs...)
			hits := []event.ContextMessage{}
			for _, ev := range evs {
				if ev.EventID == "q1" || ev.EventID == "q2" || ev.EventID == "q3" || ev.EventID == "t-q" {
					hits = append(hits, event.ContextMessage{EventID: ev.EventID, Role: ev.Role, SentAt: ev.SentAt})
				}
			}
			before := st.Stats().Following
			got, err := st.Following(testCtx(t, 30*time.Second), chat, hits, 2)
			if err != nil {
				t.Fatal(err)
			}
			// q2 (reply 20 minutes later) and q3 (none within the hour) need
			// the search by hours; q1 and t-q are settled by their minutes.
			if n := st.Stats().Following - before; n != 2 {
				t.Errorf("%d searches, want 2: by minutes, then by hours for the hits still short", n)
			}
			want := map[string][]string{"q1": {"a1", "x1"}, "q2": {"a2"}, "t-q": {"t-a"}}
			if len(got) != len(want) {
				t.Errorf("Following has %d hits, want %d: %v", len(got), len(want), got)
			}
			for hit, ids := range want {
				if g := eventIDs(got[hit]); !slices.Equal(g, ids) {
					t.Errorf("following %s = %v, want %v", hit, g, ids)
				}
			}
			before = st.Stats().Following
			if one, err := st.Following(testCtx(t, 30*time.Second), chat, hits[:1], 1); err != nil || !slices.Equal(eventIDs(one["q1"]), []string{"a1"}) {
				t.Errorf("one neighbour: %v, %v", one, err)
			}
			if n := st.Stats().Following - before; n != 1 {
				t.Errorf("a reply within the minute took %d searches, want 1", n)
			}
		})
	}
}

// TestReferences: the chat's ERP references newest mention first, one entry
// each, at most limit, none from after the event or another chat.
func TestReferences(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			chat, other := chatID(t), chatID(t)
			putAll(t, st,
				msg(chat, "e1", event.RoleUser, 1, "order S00042 please, PO00012 is ours"),
				msg(chat, "e2", event.RoleAssistant, 2, "Invoice INV/2026/00017 for S00042 is out."),
				msg(chat, "e3", event.RoleUser, 3, "nothing here"),
				msg(chat, "e4", event.RoleUser, 4, "delivery WH/OUT/00005?"),
				msg(chat, "late", event.RoleUser, 9, "S00099 after the event"),
				msg(other, "o1", event.RoleUser, 1, "S00777"))
			got, err := st.References(testCtx(t, 30*time.Second), chat, t0.Add(5*time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			want := []event.Reference{
				{Ref: "WH/OUT/00005", Kind: "delivery", EventID: "e4", SentAt: t0.Add(4 * time.Minute)},
				{Ref: "INV/2026/00017", Kind: "invoice", EventID: "e2", SentAt: t0.Add(2 * time.Minute)},
				{Ref: "S00042", Kind: "sale_order", EventID: "e2", SentAt: t0.Add(2 * time.Minute)},
				{Ref: "PO00012", Kind: "purchase_order", EventID: "e1", SentAt: t0.Add(time.Minute)},
			}
			if len(got) != len(want) {
				t.Fatalf("References = %+v, want %+v", got, want)
			}
			for i := range want {
				if got[i].Ref != want[i].Ref || got[i].Kind != want[i].Kind || got[i].EventID != want[i].EventID || !got[i].SentAt.Equal(want[i].SentAt) {
					t.Errorf("reference %d = %+v, want %+v", i, got[i], want[i])
				}
			}
			if two, err := st.References(testCtx(t, 30*time.Second), chat, t0.Add(5*time.Minute), 2); err != nil || len(two) != 2 {
				t.Errorf("limit 2: %+v, %v", two, err)
			}
		})
	}
}
