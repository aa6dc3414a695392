package app_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/app/apptest"
	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
)

// resultTimeout bounds the wait for a test's results; a run takes seconds.
const resultTimeout = 90 * time.Second

// sampleRoutes is the route CONTRACT.md gives each user message of the
// sample chats: odoo_erp for orders, quotations, invoices, deliveries,
// stock, products and Odoo references; general for the rest; a known
// route_hint wins.
var sampleRoutes = map[string]string{
	"wa-1001":  "odoo_erp", // delivery address for our orders, warehouse
	"tg-2001":  "general",  // opening hours
	"web-3001": "odoo_erp", // in stock?
	"wa-4001":  "odoo_erp", // last delivery
	"wa-1003":  "odoo_erp", // order S00042
	"wa-4003":  "odoo_erp", // delivery WH/OUT/00011
	"tg-5002":  "odoo_erp", // invoices
	"tg-2003":  "general",  // parking
	"wa-1005":  "odoo_erp", // WH/OUT/00005
	"web-3003": "odoo_erp", // WH/OUT/00009
	"wa-4006":  "odoo_erp", // when will the replacement arrive: carried from wa-4003's delivery (ROUTE_CARRY)
	"tg-2005":  "general",  // brewery tours
	"wa-1007":  "odoo_erp", // INV/2026/00017
	"web-3005": "odoo_erp", // route_hint odoo_erp (cancel that order)
	"wa-1009":  "odoo_erp", // quotation
	"tg-2007":  "general",  // dog on the tour
	"web-3006": "general",  // route_hint general (phone number)
	"wa-1011":  "odoo_erp", // stock
	"wa-1013":  "odoo_erp", // quotation
	"wa-1015":  "odoo_erp", // payment term
	"wa-1017":  "odoo_erp", // purchase order PO00012
	"wa-1019":  "odoo_erp", // account manager: carried from wa-1017's purchase order (ROUTE_CARRY)
	"wa-1021":  "odoo_erp", // S00042
	"wa-1023":  "odoo_erp", // S00042
	"wa-1025":  "odoo_erp", // warehouse
}

// sampleRejects is the error_code each invalid sample line must reach the
// dead-letter queue with.
var sampleRejects = map[string]string{
	"bad-1": event.CodeNotJSON, "bad-2": event.CodeMissingField, "bad-3": event.CodeInvalidField,
	"bad-4": event.CodeInvalidField, "bad 5": event.CodeInvalidField,
}

// TestSampleChats sends the project's sample chats (chat ids moved into the
// test's namespace, invalid lines included) to a worker with HISTORY_LIMIT=3
// and checks every result field by field against the contract, the
// dead-letter queue, and the worker's log lines.
func TestSampleChats(t *testing.T) {
	t.Parallel()
	const historyLimit = 3
	e := stacktest.New(t, stacktest.With("HISTORY_LIMIT", fmt.Sprint(historyLimit), "LOG_LEVEL", "info", "SHUTDOWN_TIMEOUT", shortPolls))
	samples := apptest.Samples(t)
	var (
		msgs    []stacktest.Msg
		events  []event.Event
		poison  = map[string]string{} // body → sample event id
		texts   []string
		origIDs = map[string]string{} // namespaced chat → sample chat
	)
	for _, s := range samples {
		m := s.Namespaced(e)
		msgs = append(msgs, m)
		if txt, ok := s.Fields["text"].(string); ok {
			texts = append(texts, txt)
		}
		ev, err := event.Decode([]byte(m.Body))
		if err != nil {
			id, _ := s.Fields["event_id"].(string)
			if s.Fields == nil {
				id = "bad-1"
			}
			poison[m.Body] = id
			continue
		}
		events = append(events, ev)
		origIDs[ev.ChatID] = s.Fields["chat_id"].(string)
	}
	if len(poison) != len(sampleRejects) || len(events) != 46 {
		t.Fatalf("samples: %d valid, %d invalid; the test expects 46 and %d", len(events), len(poison), len(sampleRejects))
	}
	want := contracttest.Expect(events, historyLimit)
	if len(want) != len(sampleRoutes) {
		t.Fatalf("samples hold %d user messages, sampleRoutes %d", len(want), len(sampleRoutes))
	}

	w := startWorker(t, e.Config, app.Options{})
	from := time.Now()
	e.Send(t, msgs...)
	results := e.Results(t, len(want), resultTimeout)

	got := map[string]contracttest.Result{}
	for _, r := range results {
		if _, dup := got[r.EventID]; dup {
			t.Errorf("two results for %s", r.EventID)
		}
		got[r.EventID] = r
		wt, ok := want[r.EventID]
		if !ok {
			t.Errorf("result for %s, which is not a user message", r.EventID)
			continue
		}
		contracttest.CheckEnvelope(t, r, true, from)
		contracttest.CheckContext(t, r, wt, e.Config.RelevanceLimit)
		if r.ChatID != wt.Event.ChatID {
			t.Errorf("%s: chat_id %q, want %q", r.EventID, r.ChatID, wt.Event.ChatID)
		}
		if r.Route != sampleRoutes[r.EventID] {
			t.Errorf("%s: route %q, want %q (%q)", r.EventID, r.Route, sampleRoutes[r.EventID], wt.Event.Text)
		}
		if len(r.Degraded) != 0 {
			t.Errorf("%s: degraded %+v, want []", r.EventID, r.Degraded)
		}
		if r.Worker != results[0].Worker {
			t.Errorf("%s: worker %q, another result says %q: one worker ran", r.EventID, r.Worker, results[0].Worker)
		}
	}

	// Per chat, results leave in the order the events arrived.
	order := map[string][]string{}
	for _, r := range results {
		order[r.ChatID] = append(order[r.ChatID], r.EventID)
	}
	for _, ev := range events {
		if _, ok := want[ev.EventID]; ok {
			order[ev.ChatID+"/want"] = append(order[ev.ChatID+"/want"], ev.EventID)
		}
	}
	for chat := range origIDs {
		if !slices.Equal(order[chat], order[chat+"/want"]) {
			t.Errorf("chat %s: results in order %v, events sent %v", origIDs[chat], order[chat], order[chat+"/want"])
		}
	}

	// What the model gives, spelled out for the sample's own stories, so a
	// wrong model cannot hide a wrong worker.
	spelled := []struct {
		id      string
		muted   bool
		history []string
	}{
		{"wa-1003", false, []string{"wa-1001", "wa-1002"}}, // the assistant's reply is in later history
		{"wa-1025", false, []string{"wa-1019", "wa-1020", "wa-1021", "wa-1022", "wa-1023", "wa-1024"}},
		{"tg-5002", false, nil}, // the mute ended (until 2026-11-27T18:00) before it was sent
		{"wa-4001", false, nil}, // before the mute
		{"wa-4003", true, nil},  // muted: no context
		{"wa-4006", false, []string{"wa-4001", "wa-4003", "wa-4004"}}, // unmuted; the muted message was stored
		{"web-3003", false, []string{"web-3001", "web-3002"}},
	}
	for _, s := range spelled {
		r, ok := got[s.id]
		if !ok {
			continue
		}
		if r.Muted != s.muted || !slices.Equal(contracttest.IDs(r.History), s.history) && len(s.history)+len(r.History) > 0 {
			t.Errorf("%s: muted %v history %v; want muted %v history %v", s.id, r.Muted, contracttest.IDs(r.History), s.muted, s.history)
		}
	}
	// Relevance reaches past the history: wa-1021 asks whether the delivery
	// address change went through; the message that asked for the change
	// (wa-1001) is older than the last three of each role.
	if r, ok := got["wa-1021"]; ok && !slices.Contains(contracttest.IDs(r.Relevant), "wa-1001") {
		t.Errorf("wa-1021: relevant %v lacks wa-1001 (the address change it asks about)", contracttest.IDs(r.Relevant))
	}

	// The invalid lines went to the dead-letter queue untouched, with their
	// error code.
	for _, d := range e.DeadLetters(t, len(poison), resultTimeout) {
		id, ok := poison[d.Body]
		if !ok {
			t.Errorf("dead letter with a body that was not sent as is: %q", d.Body)
			continue
		}
		delete(poison, d.Body)
		if d.Attributes["error_code"] != sampleRejects[id] || d.Attributes["error"] == "" {
			t.Errorf("%s: dead letter attributes %v, want error_code %s and an error", id, d.Attributes, sampleRejects[id])
		}
	}

	// One log line per event at info, with the contract's fields; no text.
	w.logs.Wait(t, resultTimeout, "a line per event", func(ls []logtest.Line) bool {
		return logtest.Count(ls, logtest.Preprocessed, "")+logtest.Count(ls, logtest.Handled, "") >= len(events)
	})
	lines := w.logs.Lines()
	contracttest.CheckEventLines(t, lines, events, got)
	logtest.CheckNoText(t, lines, texts)
}

// chatEvent builds a message event of chat at minute min past 08:00 UTC on
// the samples' day.
func chatEvent(chat, id, role, text string, minute int, extra ...string) map[string]any {
	ev := map[string]any{"event_id": id, "chat_id": chat, "role": role, "text": text,
		"sent_at": day.Add(time.Duration(minute) * time.Minute).Format(time.RFC3339)}
	for i := 0; i+1 < len(extra); i += 2 {
		ev[extra[i]] = extra[i+1]
	}
	return ev
}

var day = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

// TestPurposeBuiltChats checks what the samples cannot show exactly:
// relevance picks the one older message that shares the question's words,
// a message already in history is never also relevant, a mute with until
// ends by itself, and route_hint wins over the rules both ways.
func TestPurposeBuiltChats(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.With("HISTORY_LIMIT", "3", "SHUTDOWN_TIMEOUT", shortPolls))
	kb, mu, rt := e.ChatID("kb"), e.ChatID("mute-until"), e.ChatID("routes")
	until := day.Add(2 * time.Hour).Format(time.RFC3339) // 10:00
	evs := []map[string]any{
		// Only k01 shares words with k11; k05-k10 are the newest three of each role.
		chatEvent(kb, "k01", "user", "Sauerkraut fermentation question from Kiel.", 0),
		chatEvent(kb, "k02", "assistant", "Cellar tours run Saturdays.", 1),
		chatEvent(kb, "k03", "user", "Pretzel prices please.", 2),
		chatEvent(kb, "k04", "assistant", "Pretzels cost two euro.", 3),
		chatEvent(kb, "k05", "user", "Lager brewing temperature?", 4),
		chatEvent(kb, "k06", "assistant", "Lager ferments cold, near eight degrees.", 5),
		chatEvent(kb, "k07", "user", "Wheat beer yeast strain?", 6),
		chatEvent(kb, "k08", "assistant", "Weihenstephan strain sixty-eight.", 7),
		chatEvent(kb, "k09", "user", "Bottle deposit amount?", 8),
		chatEvent(kb, "k10", "assistant", "Deposit: eight cents per bottle.", 9),
		chatEvent(kb, "k11", "user", "Remind me: sauerkraut fermentation, Kiel?", 10),
		// Its best matches (k09, k10) are in its history: not relevant again.
		chatEvent(kb, "k12", "user", "Bottle deposit amount again?", 11),

		{"event_id": "mu-0", "chat_id": mu, "type": "mute", "until": until},
		chatEvent(mu, "m01", "user", "Anyone there?", 119),  // 09:59, muted
		chatEvent(mu, "m02", "user", "Hello again?", 121),   // 10:01, the mute has ended
		{"event_id": "mu-1", "chat_id": mu, "type": "mute"}, // for good
		chatEvent(mu, "m03", "user", "Still nobody?", 125),  // muted
		{"event_id": "mu-2", "chat_id": mu, "type": "unmute"},
		chatEvent(mu, "m04", "user", "Finally!", 126),

		chatEvent(rt, "r01", "user", "Thanks, see you soon", 0),
		chatEvent(rt, "r02", "user", "Status of S00042?", 1),
		chatEvent(rt, "r03", "user", "INV/2026/00017 paid?", 2),
		chatEvent(rt, "r04", "user", "What about WH/OUT/00005?", 3),
		chatEvent(rt, "r05", "user", "PO00012 arrived?", 4),
		chatEvent(rt, "r06", "user", "Hello there", 5, "route_hint", "odoo_erp"),
		chatEvent(rt, "r07", "user", "Where is S00042 now?", 6, "route_hint", "general"),
		chatEvent(rt, "r08", "user", "Where is S00043 now?", 7, "route_hint", "sales"), // unknown: the rules decide
	}
	var msgs []stacktest.Msg
	var events []event.Event
	for _, ev := range evs {
		m := stacktest.Event(ev)
		msgs = append(msgs, m)
		d, err := event.Decode([]byte(m.Body))
		if err != nil {
			t.Fatalf("%v: %v", ev, err)
		}
		events = append(events, d)
	}
	want := contracttest.Expect(events, 3)

	startWorker(t, e.Config, app.Options{})
	from := time.Now()
	e.Send(t, msgs...)
	got := map[string]contracttest.Result{}
	for _, r := range e.Results(t, len(want), resultTimeout) {
		got[r.EventID] = r
		contracttest.CheckEnvelope(t, r, true, from)
		contracttest.CheckContext(t, r, want[r.EventID], e.Config.RelevanceLimit)
		if len(r.Degraded) != 0 {
			t.Errorf("%s: degraded %+v", r.EventID, r.Degraded)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct results, want %d", len(got), len(want))
	}

	k11 := got["k11"]
	if h := contracttest.IDs(k11.History); !slices.Equal(h, []string{"k05", "k06", "k07", "k08", "k09", "k10"}) {
		t.Errorf("k11: history %v", h)
	}
	if len(k11.Relevant) == 0 || k11.Relevant[0].EventID != "k01" {
		t.Errorf("k11: relevant %v, want k01 first (the only older message about sauerkraut fermentation in Kiel)", contracttest.IDs(k11.Relevant))
	}
	k12 := got["k12"]
	if rel := contracttest.IDs(k12.Relevant); slices.Contains(rel, "k09") || slices.Contains(rel, "k10") {
		t.Errorf("k12: relevant %v repeats its history %v", rel, contracttest.IDs(k12.History))
	}

	for id, w := range map[string]struct {
		muted   bool
		history []string
	}{
		"m01": {true, nil},
		"m02": {false, []string{"m01"}},
		"m03": {true, nil},
		"m04": {false, []string{"m01", "m02", "m03"}},
	} {
		r := got[id]
		if r.Muted != w.muted || len(r.History)+len(w.history) > 0 && !slices.Equal(contracttest.IDs(r.History), w.history) {
			t.Errorf("%s: muted %v history %v; want muted %v history %v", id, r.Muted, contracttest.IDs(r.History), w.muted, w.history)
		}
	}

	routes := map[string]string{
		"r01": "general", "r02": "odoo_erp", "r03": "odoo_erp", "r04": "odoo_erp", "r05": "odoo_erp",
		"r06": "odoo_erp", "r07": "general", "r08": "odoo_erp",
	}
	for _, id := range slices.Sorted(maps.Keys(routes)) {
		if got[id].Route != routes[id] {
			t.Errorf("%s: route %q, want %q", id, got[id].Route, routes[id])
		}
	}
}
