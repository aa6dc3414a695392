package contracttest

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
)

// Result is one result read from the response queue, with what SQS carried
// around it.
type Result struct {
	event.Result
	Body string
	// Fields is the body's top-level JSON object, for checking key names.
	Fields map[string]json.RawMessage
	// Attributes are the message attributes (all of type String).
	Attributes map[string]string
	// GroupID and DedupID are the FIFO system attributes (empty on a
	// standard queue).
	GroupID, DedupID string
	// Received is when the test read it.
	Received time.Time
}

// ReadResult decodes m, a message of the response queue, as the
// contract's result (no key the contract does not name), with its message
// attributes and FIFO system attributes; a message that is not one fails t.
func ReadResult(t testing.TB, m types.Message) Result {
	t.Helper()
	r := Result{Body: aws.ToString(m.Body), Attributes: attributes(m), Received: time.Now()}
	r.GroupID = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
	r.DedupID = m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)]
	dec := json.NewDecoder(strings.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.Result); err != nil {
		t.Fatalf("result is not the contract's JSON: %v\n%s", err, r.Body)
	}
	if err := json.Unmarshal([]byte(r.Body), &r.Fields); err != nil {
		t.Fatalf("result is not a JSON object: %v", err)
	}
	return r
}

func attributes(m types.Message) map[string]string {
	attrs := map[string]string{}
	for k, v := range m.MessageAttributes {
		attrs[k] = aws.ToString(v.StringValue)
	}
	return attrs
}

// DeadLetter is one message of the dead-letter queue.
type DeadLetter struct {
	Body       string
	Attributes map[string]string
}

// ReadDeadLetter is m, a message of the dead-letter queue, with its
// message attributes.
func ReadDeadLetter(m types.Message) DeadLetter {
	return DeadLetter{Body: aws.ToString(m.Body), Attributes: attributes(m)}
}

// Want is what the contract says one user message's result holds, given
// the events before it.
type Want struct {
	Event event.Event
	Muted bool
	// History is the event ids of the newest 2×HISTORY_LIMIT messages sent
	// no later than the event, at most HISTORY_LIMIT of each role, the
	// event itself excluded, oldest first: the history a result holds when
	// the budget leaves room for all of it.
	History []string
	// Stored is every message of the chat the result may draw on: stored
	// before the event and sent no later than it, the event excluded.
	Stored map[string]event.ContextMessage
}

// Expect runs the contract over events in the order a FIFO queue hands
// them to the worker (per chat, as sent) and returns what each user
// message's result must hold, by event id. Repeated event ids count once.
func Expect(events []event.Event, historyLimit int) map[string]Want {
	type chat struct {
		stored []event.ContextMessage
		ids    map[string]bool
		muted  bool
		until  *time.Time
	}
	chats := map[string]*chat{}
	want := map[string]Want{}
	for _, ev := range events {
		c := chats[ev.ChatID]
		if c == nil {
			c = &chat{ids: map[string]bool{}}
			chats[ev.ChatID] = c
		}
		switch ev.Type {
		case event.TypeMute:
			c.muted, c.until = true, ev.Until
			continue
		case event.TypeUnmute:
			c.muted, c.until = false, nil
			continue
		}
		if c.ids[ev.EventID] {
			continue
		}
		if ev.Role == event.RoleUser {
			w := Want{Event: ev, Muted: c.muted && (c.until == nil || c.until.After(ev.SentAt)), Stored: map[string]event.ContextMessage{}}
			var before []event.ContextMessage
			for _, m := range c.stored {
				if m.SentAt.After(ev.SentAt) {
					continue
				}
				w.Stored[m.EventID] = m
				before = append(before, m)
			}
			slices.SortStableFunc(before, func(a, b event.ContextMessage) int { return a.SentAt.Compare(b.SentAt) })
			before = before[max(0, len(before)-2*historyLimit):]
			perRole := map[event.Role]int{}
			var hist []string
			for i := len(before) - 1; i >= 0; i-- {
				if m := before[i]; perRole[m.Role] < historyLimit {
					perRole[m.Role]++
					hist = append(hist, m.EventID)
				}
			}
			slices.Reverse(hist)
			w.History = hist
			want[ev.EventID] = w
		}
		c.ids[ev.EventID] = true
		c.stored = append(c.stored, event.ContextMessage{EventID: ev.EventID, Role: ev.Role, Text: ev.Text, SentAt: ev.SentAt})
	}
	return want
}

// Keys are the result's top-level keys (CONTRACT.md) that every
// result has; superseded_by is there only when set (OptionalKeys).
var Keys = []string{"event_id", "chat_id", "route", "muted", "history", "relevant", "tokens", "burst", "references",
	"degraded", "timings_ms", "worker", "processed_at"}

// OptionalKeys are the result's keys present only when they have a value.
var OptionalKeys = []string{"superseded_by"}

// Timings are the timings_ms keys CONTRACT.md shows.
var Timings = []string{"message_history", "relevance_search", "muted_status", "preprocessing", "total"}

// CheckEnvelope checks what every result carries whatever its content: the
// contract's keys and no others, arrays never null, the timings, the
// message attributes (event_id, chat_id, route, a W3C traceparent, and
// tracestate when there is one) and (on a FIFO queue) MessageGroupId =
// chat_id and MessageDeduplicationId = event_id, and a processed_at in
// [from, its receipt].
func CheckEnvelope(t testing.TB, r Result, fifo bool, from time.Time) {
	t.Helper()
	id := r.EventID
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		if !slices.Contains(OptionalKeys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	want := slices.Sorted(slices.Values(Keys))
	if !slices.Equal(keys, want) {
		t.Errorf("%s: keys %v, want %v", id, keys, want)
	}
	if v, ok := r.Fields["superseded_by"]; ok && (len(v) < 3 || v[0] != '"') {
		t.Errorf("%s: superseded_by is %s, want an event id", id, v)
	}
	for _, k := range []string{"history", "relevant", "degraded", "burst", "references"} {
		if v := strings.TrimSpace(string(r.Fields[k])); !strings.HasPrefix(v, "[") {
			t.Errorf("%s: %s is %s, want an array", id, k, v)
		}
	}
	var timings map[string]float64
	if err := json.Unmarshal(r.Fields["timings_ms"], &timings); err != nil {
		t.Errorf("%s: timings_ms: %v", id, err)
	}
	for _, k := range Timings {
		v, ok := timings[k]
		if !ok || v < 0 {
			t.Errorf("%s: timings_ms.%s = %v (present %v)", id, k, v, ok)
		}
	}
	tm := r.TimingsMS
	if tm.Preprocessing > tm.Total || tm.MessageHistory > tm.Preprocessing || tm.RelevanceSearch > tm.Preprocessing || tm.MutedStatus > tm.Preprocessing {
		t.Errorf("%s: timings_ms inconsistent: %+v (each task within preprocessing, preprocessing within total)", id, tm)
	}
	if r.Worker == "" || !strings.Contains(r.Worker, "/") {
		t.Errorf("%s: worker %q, want host/id", id, r.Worker)
	}
	var at string
	_ = json.Unmarshal(r.Fields["processed_at"], &at)
	if !strings.HasSuffix(at, "Z") || r.ProcessedAt.Before(from) || r.ProcessedAt.After(r.Received) {
		t.Errorf("%s: processed_at %s, want UTC between %s and its receipt %s", id, at, from.Format(time.RFC3339Nano), r.Received.Format(time.RFC3339Nano))
	}
	for _, m := range r.History {
		if m.Score != nil {
			t.Errorf("%s: history item %s has a score", id, m.EventID)
		}
	}
	wantAttrs := map[string]string{"event_id": r.EventID, "chat_id": r.ChatID, "route": r.Route}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v, ok := r.Attributes[k]; ok {
			wantAttrs[k] = v
		}
	}
	if _, _, ok := TraceParent(r.Attributes["traceparent"]); !ok {
		t.Errorf("%s: traceparent %q, want a W3C traceparent (00-<trace id>-<span id>-<flags>)", id, r.Attributes["traceparent"])
	}
	if !mapsEqual(r.Attributes, wantAttrs) {
		t.Errorf("%s: message attributes %v, want %v", id, r.Attributes, wantAttrs)
	}
	if fifo && (r.GroupID != r.ChatID || r.DedupID != r.EventID) {
		t.Errorf("%s: MessageGroupId %q, MessageDeduplicationId %q; want the chat id and the event id", id, r.GroupID, r.DedupID)
	}
}

var traceParentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)

// TraceParent splits a W3C traceparent (version 00) into its trace and span
// ids; ok is false when tp is not one, or either id is all zeros.
func TraceParent(tp string) (traceID, spanID string, ok bool) {
	m := traceParentRE.FindStringSubmatch(tp)
	if m == nil || strings.Trim(m[1], "0") == "" || strings.Trim(m[2], "0") == "" {
		return "", "", false
	}
	return m[1], m[2], true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// CheckContext checks a result's muted flag, history and relevant against
// w: history exactly as the contract orders it; relevant best first, at
// most limit, each a stored message of the chat sent no later than the
// event, none in history, none twice, never the event itself.
func CheckContext(t testing.TB, r Result, w Want, limit int) {
	t.Helper()
	id := r.EventID
	if r.Muted != w.Muted {
		t.Errorf("%s: muted %v, want %v", id, r.Muted, w.Muted)
	}
	if w.Muted {
		if len(r.History)+len(r.Relevant) != 0 || r.Tokens.History+r.Tokens.Relevant != 0 {
			t.Errorf("%s: muted chat with %d history and %d relevant messages, tokens %+v", id, len(r.History), len(r.Relevant), r.Tokens)
		}
		return
	}
	got := make([]string, len(r.History))
	for i, m := range r.History {
		got[i] = m.EventID
		if s, ok := w.Stored[m.EventID]; !ok || !sameMessage(s, m) {
			t.Errorf("%s: history item %+v is not the stored message %+v", id, m, s)
		}
	}
	// The budget (CONTEXT_TOKEN_BUDGET) may leave older history out, never
	// the newest message: with room to spare (under half of the default
	// budget used) all of it is there; else what is there is among it, in
	// order.
	if r.Tokens.History+r.Tokens.Relevant < 1000 {
		if !slices.Equal(got, w.History) && !(len(got) == 0 && len(w.History) == 0) {
			t.Errorf("%s: history %v, want %v", id, got, w.History)
		}
	} else if !isSubsequence(got, w.History) || (len(w.History) > 0 && (len(got) == 0 || got[len(got)-1] != w.History[len(w.History)-1])) {
		t.Errorf("%s: history %v is not the newest of %v in order", id, got, w.History)
	}
	for _, b := range r.Burst {
		if !slices.Contains(got, b) {
			t.Errorf("%s: burst %s is not in history", id, b)
		}
	}
	seen := map[string]bool{}
	for _, h := range got {
		seen[h] = true
	}
	hits, hit := 0, ""
	var lastScore *float64
	for _, m := range r.Relevant {
		switch s, ok := w.Stored[m.EventID]; {
		case m.EventID == id:
			t.Errorf("%s: the event is in its own relevant", id)
		case seen[m.EventID]:
			t.Errorf("%s: relevant %s is already in history or listed twice", id, m.EventID)
		case !ok:
			t.Errorf("%s: relevant %s is not an earlier message of the chat", id, m.EventID)
		case !sameMessage(s, m):
			t.Errorf("%s: relevant item %+v is not the stored message %+v", id, m, s)
		}
		seen[m.EventID] = true
		if m.With != "" { // a neighbour: after its hit, no score
			if m.With != hit || m.Score != nil || m.SentAt.Before(w.Stored[hit].SentAt) {
				t.Errorf("%s: relevant %s with %q (score %v) does not follow its hit %q", id, m.EventID, m.With, m.Score, hit)
			}
			continue
		}
		hits++
		hit = m.EventID
		if m.Score == nil || *m.Score <= 0 {
			t.Errorf("%s: relevant %s has score %v", id, m.EventID, m.Score)
		} else if lastScore != nil && *m.Score > *lastScore {
			t.Errorf("%s: relevant not best first: %s (%v) after one of %v", id, m.EventID, *m.Score, *lastScore)
		}
		lastScore = m.Score
	}
	if hits > limit {
		t.Errorf("%s: %d passages, limit %d", id, hits, limit)
	}
	if r.Tokens.Event <= 0 || r.Tokens.History < 0 || r.Tokens.Relevant < 0 || (len(r.History) > 0) != (r.Tokens.History > 0) {
		t.Errorf("%s: tokens %+v", id, r.Tokens)
	}
}

// isSubsequence tells whether sub's items appear in all in the same order.
func isSubsequence(sub, all []string) bool {
	i := 0
	for _, s := range all {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

func sameMessage(a, b event.ContextMessage) bool {
	return a.EventID == b.EventID && a.Role == b.Role && a.Text == b.Text && a.SentAt.Equal(b.SentAt)
}

// IDs lists the event ids of msgs.
func IDs(msgs []event.ContextMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.EventID
	}
	return out
}

// CheckEventLines checks the per-event log lines: exactly one per event; a
// user message's with event_id, chat_id, route, muted, degraded (count),
// duration_ms, timings_ms and trace_id agreeing with its result (its
// traceparent's trace).
func CheckEventLines(t testing.TB, lines []logtest.Line, events []event.Event, results map[string]Result) {
	t.Helper()
	for _, ev := range events {
		msg := logtest.Handled
		if ev.Type == event.TypeMessage && ev.Role == event.RoleUser {
			msg = logtest.Preprocessed
		}
		if n := logtest.Count(lines, msg, ev.EventID); n != 1 {
			t.Errorf("%s: %d %q lines, want 1", ev.EventID, n, msg)
		}
	}
	for _, l := range lines {
		if l.Fields == nil {
			t.Errorf("log line is not JSON: %s", l.Raw)
			continue
		}
		if l.Msg() != logtest.Preprocessed {
			continue
		}
		r, ok := results[l.Str("event_id")]
		if !ok {
			t.Errorf("log line for an event without result: %s", l.Raw)
			continue
		}
		var tm map[string]float64
		raw, _ := json.Marshal(l.Fields["timings_ms"])
		_ = json.Unmarshal(raw, &tm)
		for _, k := range Timings {
			if _, ok := tm[k]; !ok {
				t.Errorf("%s: log line timings_ms lacks %s: %s", r.EventID, k, l.Raw)
			}
		}
		dur, _ := l.Fields["duration_ms"].(float64)
		if traceID, _, _ := TraceParent(r.Attributes["traceparent"]); l.Str("trace_id") != traceID {
			t.Errorf("%s: log line trace_id %q, its result's traceparent %q", r.EventID, l.Str("trace_id"), r.Attributes["traceparent"])
		}
		if l.Level() != "info" || l.Str("chat_id") != r.ChatID || l.Str("route") != r.Route ||
			l.Fields["muted"] != r.Muted || l.Fields["degraded"] != float64(len(r.Degraded)) ||
			dur < r.TimingsMS.Preprocessing || tm["preprocessing"] != r.TimingsMS.Preprocessing || l.Str("worker") != r.Worker {
			t.Errorf("%s: log line does not match its result %+v:\n%s", r.EventID, r.Result, l.Raw)
		}
	}
}
