package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// TestMutedOrderedByEventTime: an older mute or unmute applied after a
// newer one never wins, also applied again (a redelivery or a redrive),
// and at the same instant the greater event id wins on every read.
func TestMutedOrderedByEventTime(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			ctx := testCtx(t, 30*time.Second)
			chat := chatID(t)
			t1 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			set := func(id string, typ event.Type, at time.Time) {
				t.Helper()
				if err := st.SetMuted(ctx, event.Event{EventID: id, ChatID: chat, Type: typ, SentAt: at}); err != nil {
					t.Fatal(err)
				}
			}
			check := func(step string, want bool) {
				t.Helper()
				if got, err := st.Muted(ctx, chat, t1.Add(time.Hour)); err != nil || got != want {
					t.Fatalf("%s: muted %v (%v), want %v", step, got, err, want)
				}
			}
			set("mute-1", event.TypeMute, t1)
			check("mute", true)
			set("unmute-2", event.TypeUnmute, t1.Add(time.Minute))
			check("newer unmute", false)
			set("mute-1", event.TypeMute, t1)
			check("the older mute applied again", false)
			set("mute-0", event.TypeMute, t1.Add(-time.Hour))
			check("an even older mute arriving late", false)
			set("mute-3", event.TypeMute, t1.Add(2*time.Minute))
			check("a newer mute", true)
			set("unmute-2", event.TypeUnmute, t1.Add(time.Minute))
			check("the older unmute redelivered", true)
			// Same instant: the greater event id wins, whichever came last.
			tie := t1.Add(3 * time.Minute)
			set("b-unmute", event.TypeUnmute, tie)
			set("a-mute", event.TypeMute, tie)
			check("tie, b-unmute > a-mute", false)
		})
	}
}

// TestMutedConcurrentWorkersNeverRegress: several stores (as several
// workers) apply one chat's mutes and unmutes at once, each in its own
// random order and each event more than once (redeliveries); after every
// round the state is the newest event's, on each store.
func TestMutedConcurrentWorkersNeverRegress(t *testing.T) {
	t.Parallel()
	const workers, events, rounds = 4, 12, 5
	stores := make([]*Store, workers)
	for i := range stores {
		stores[i] = newStore(t, i%2 == 0)
	}
	ctx := testCtx(t, 2*time.Minute)
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for round := range rounds {
		chat := chatID(t)
		r := rand.New(rand.NewPCG(uint64(round), 16))
		evs := make([]event.Event, events)
		for i := range evs {
			typ := event.TypeMute
			if r.IntN(2) == 0 {
				typ = event.TypeUnmute
			}
			evs[i] = event.Event{EventID: fmt.Sprintf("e-%02d", i), ChatID: chat, Type: typ, SentAt: base.Add(time.Duration(i) * time.Second)}
		}
		newest := evs[events-1]
		var wg sync.WaitGroup
		for w, st := range stores {
			order := append(r.Perm(events), r.Perm(events)[:events/2]...)
			wg.Go(func() {
				for _, i := range order {
					if err := st.SetMuted(ctx, evs[i]); err != nil {
						t.Errorf("worker %d: %v", w, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for w, st := range stores {
			got, err := st.Muted(ctx, chat, base.Add(time.Hour))
			if err != nil || got != (newest.Type == event.TypeMute) {
				t.Errorf("round %d, worker %d: muted %v (%v), want the newest event's (%s)", round, w, got, err, newest.Type)
			}
		}
	}
}

// TestMutedReadsAndConvertsLegacyState: a chat whose state object was
// written by an older version (the state itself at StateID) keeps that
// state; a mute or unmute older than when it was applied does not replace
// it, a newer one does, and from then on the chat has entries and a head.
func TestMutedReadsAndConvertsLegacyState(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			ctx := testCtx(t, 30*time.Second)
			chat := chatID(t)
			applied := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			// What SetMuted wrote before entries: the state, at StateID.
			if err := st.batcher.put(ctx, writeObject{collection: StateCollection, id: StateID(chat), props: objectProps{
				propChatID: chat, propEventID: "old-mute", propMuted: true, propUpdatedAt: applied.Format(time.RFC3339Nano),
			}}); err != nil {
				t.Fatal(err)
			}
			check := func(step string, want bool) {
				t.Helper()
				if got, err := st.Muted(ctx, chat, applied); err != nil || got != want {
					t.Fatalf("%s: muted %v (%v), want %v", step, got, err, want)
				}
			}
			check("legacy mute", true)
			if err := st.SetMuted(ctx, event.Event{EventID: "stale-unmute", ChatID: chat, Type: event.TypeUnmute, SentAt: applied.Add(-time.Minute)}); err != nil {
				t.Fatal(err)
			}
			check("an unmute sent before the legacy mute was applied", true)
			h, err := st.chatHead(ctx, chat)
			if err != nil || !h.found || h.legacy != nil {
				t.Fatalf("head after the first entry: %+v (%v), want a head without state", h, err)
			}
			if err := st.SetMuted(ctx, event.Event{EventID: "new-unmute", ChatID: chat, Type: event.TypeUnmute, SentAt: applied.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			check("a newer unmute", false)
			if n := countObjects(t, st, StateCollection, chat); n != 3 {
				t.Errorf("%d entries, want 3 (the legacy state's and two events)", n)
			}
		})
	}
}

// TestMutedCostsOneReadForChatsNeverMuted: the common case stays one GET
// by id; a chat with entries costs one search more.
func TestMutedCostsOneReadForChatsNeverMuted(t *testing.T) {
	t.Parallel()
	st := newStore(t, true)
	ctx := testCtx(t, 30*time.Second)
	never, muted := chatID(t), chatID(t)
	if err := st.SetMuted(ctx, event.Event{EventID: "m", ChatID: muted, Type: event.TypeMute}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		chat          string
		heads, search uint64
	}{{never, 1, 0}, {muted, 1, 1}} {
		before := st.Stats()
		if _, err := st.Muted(ctx, c.chat, time.Now()); err != nil {
			t.Fatal(err)
		}
		after := st.Stats()
		if h, s := after.Muted-before.Muted, after.States-before.States; h != c.heads || s != c.search {
			t.Errorf("chat %s: %d head reads and %d searches, want %d and %d", c.chat, h, s, c.heads, c.search)
		}
	}
}
