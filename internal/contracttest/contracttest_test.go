package contracttest_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/event"
)

func TestTraceParent(t *testing.T) {
	t.Parallel()
	const trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, c := range []struct {
		tp string
		ok bool
	}{
		{"00-" + trace + "-" + span + "-01", true},
		{"00-" + trace + "-" + span + "-00", true},
		{"01-" + trace + "-" + span + "-01", false},                    // a version this reader does not know
		{"00-00000000000000000000000000000000-" + span + "-01", false}, // all-zero trace id
		{"00-" + trace + "-0000000000000000-01", false},                // all-zero span id
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + span + "-01", false}, // upper case
		{"00-" + trace + "-" + span + "-01-extra", false},
		{"", false},
	} {
		gotTrace, gotSpan, ok := contracttest.TraceParent(c.tp)
		if ok != c.ok || ok && (gotTrace != trace || gotSpan != span) {
			t.Errorf("TraceParent(%q) = %q, %q, %v; want ok %v", c.tp, gotTrace, gotSpan, ok, c.ok)
		}
	}
}

// TestExpect runs the oracle over one chat's events with a history limit of
// 2 and checks what it says each user message's result holds.
func TestExpect(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	msg := func(id string, role event.Role, s int) event.Event {
		return event.Event{EventID: id, Type: event.TypeMessage, ChatID: "c", Role: role, Text: "text of " + id, SentAt: at(s)}
	}
	until := at(25)
	events := []event.Event{
		msg("u1", event.RoleUser, 1),
		msg("a1", event.RoleAssistant, 2),
		msg("u2", event.RoleUser, 3),
		msg("a2", event.RoleAssistant, 4),
		msg("u3", event.RoleUser, 5),
		msg("u2", event.RoleUser, 3),   // the same event again: counts once
		msg("late", event.RoleUser, 0), // sent before everything stored so far
		{EventID: "m1", Type: event.TypeMute, ChatID: "c", Until: &until},
		msg("u4", event.RoleUser, 20),                      // muted
		msg("u5", event.RoleUser, 30),                      // the mute ran out
		{EventID: "m2", Type: event.TypeMute, ChatID: "c"}, // until unmuted
		msg("u5m", event.RoleUser, 35),
		{EventID: "x1", Type: event.TypeUnmute, ChatID: "c"},
		msg("u6", event.RoleUser, 40),
		msg("other", event.RoleUser, 41),
	}
	events[len(events)-1].ChatID = "d" // another chat: nothing of c's
	want := contracttest.Expect(events, 2)

	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(got, []string{"late", "other", "u1", "u2", "u3", "u4", "u5", "u5m", "u6"}) {
		t.Fatalf("wants for %v, want one per user message", got)
	}
	// History: the newest 2×2 messages sent no later than the event, then
	// at most 2 of each role among them, oldest first.
	for id, w := range map[string]struct {
		muted   bool
		history []string
		stored  int
	}{
		"u1":    {false, nil, 0},
		"u2":    {false, []string{"u1", "a1"}, 2},
		"u3":    {false, []string{"u1", "a1", "u2", "a2"}, 4},
		"late":  {false, nil, 0}, // nothing stored was sent before it
		"u4":    {true, []string{"a1", "u2", "a2", "u3"}, 6},
		"u5":    {false, []string{"a2", "u3", "u4"}, 7}, // a1 is out of the newest four; u2 would be a third user message
		"u5m":   {true, []string{"a2", "u4", "u5"}, 8},  // muted without an end
		"u6":    {false, []string{"u5", "u5m"}, 9},      // the newest four are all users': two of them
		"other": {false, nil, 0},
	} {
		got := want[id]
		if got.Event.EventID != id || got.Muted != w.muted || !slices.Equal(got.History, w.history) || len(got.Stored) != w.stored {
			t.Errorf("%s: muted %v, history %v, %d stored; want %v, %v, %d", id, got.Muted, got.History, len(got.Stored), w.muted, w.history, w.stored)
		}
		if _, self := got.Stored[id]; self {
			t.Errorf("%s: the event is among what its result may draw on", id)
		}
	}
}
