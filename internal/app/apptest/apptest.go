// Package apptest holds what the whole-worker tests share, whether they run
// the worker in process (package app) or as the `worker` binary (package
// main): sending chat events to a test's input queue, reading results and
// dead letters back with every attribute, the worker's log lines, counting
// what Weaviate stored, the project's sample chats, and a model of what the
// contract says each result holds, computed from the events alone.
//
// It only reads the worker from outside, through SQS, Weaviate and stdout;
// nothing here calls into the worker's packages except the event types.
package apptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/queues"
	"github.com/chatprep/chatprep/internal/sqsbatch"
	"github.com/chatprep/chatprep/internal/store"
)

// Msg is one input queue message: a body and, for a FIFO queue, its group
// and deduplication id.
type Msg struct {
	Body         string
	Group, Dedup string
	// Attributes are sent as String message attributes (a producer's
	// traceparent).
	Attributes map[string]string
}

// Event makes the Msg `worker enqueue` would send for ev: the JSON body,
// MessageGroupId = chat_id, MessageDeduplicationId = event_id.
func Event(ev map[string]any) Msg {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	chat, _ := ev["chat_id"].(string)
	id, _ := ev["event_id"].(string)
	return Msg{Body: string(b), Group: chat, Dedup: id}
}

// Send sends msgs to e's input queue in order, through the worker's own
// batch mechanism (batches of ten keep the order of a FIFO group).
func Send(t testing.TB, e *stacktest.Env, msgs ...Msg) {
	t.Helper()
	fifo := config.IsFIFO(e.InputURL)
	out := make([]sqsbatch.Message, len(msgs))
	for i, m := range msgs {
		out[i].Body = m.Body
		if len(m.Attributes) > 0 {
			out[i].Attributes = map[string]types.MessageAttributeValue{}
			for k, v := range m.Attributes {
				out[i].Attributes[k] = sqsbatch.StringAttribute(v)
			}
		}
		if fifo {
			out[i].GroupID, out[i].DeduplicationID = m.Group, m.Dedup
		}
	}
	for i, err := range sqsbatch.NewSender(e.SQS, e.InputURL, sqsbatch.Config{}).Send(t.Context(), out) {
		if err != nil {
			t.Fatalf("send event %d: %v", i, err)
		}
	}
}

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

// Results reads n results from e's response queue within timeout, deleting
// each, in the order SQS delivers them. It fails the test if fewer come.
func Results(t testing.TB, e *stacktest.Env, n int, timeout time.Duration) []Result {
	t.Helper()
	var out []Result
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for len(out) < n {
		msgs, err := receive(ctx, e, e.ResponseURL, 1)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d results after %v", len(out), n, timeout)
		}
		if err != nil {
			t.Fatalf("receive results: %v", err)
		}
		for _, m := range msgs {
			out = append(out, decodeResult(t, m))
		}
	}
	return out
}

// NoMoreResults fails the test if a result arrives on e's response queue
// within wait.
func NoMoreResults(t testing.TB, e *stacktest.Env, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for ctx.Err() == nil {
		msgs, err := receive(ctx, e, e.ResponseURL, 1)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("receive results: %v", err)
		}
		for _, m := range msgs {
			t.Errorf("unexpected result: %s", aws.ToString(m.Body))
		}
	}
}

func receive(ctx context.Context, e *stacktest.Env, url string, wait int32) ([]types.Message, error) {
	out, err := e.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, err
	}
	for _, m := range out.Messages {
		if _, err := e.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			return nil, fmt.Errorf("delete: %w", err)
		}
	}
	return out.Messages, nil
}

func attributes(m types.Message) map[string]string {
	attrs := map[string]string{}
	for k, v := range m.MessageAttributes {
		attrs[k] = aws.ToString(v.StringValue)
	}
	return attrs
}

func decodeResult(t testing.TB, m types.Message) Result {
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

// DeadLetter is one message of the dead-letter queue.
type DeadLetter struct {
	Body       string
	Attributes map[string]string
}

// DeadLetters reads n messages from e's dead-letter queue within timeout,
// deleting each.
func DeadLetters(t testing.TB, e *stacktest.Env, n int, timeout time.Duration) []DeadLetter {
	t.Helper()
	var out []DeadLetter
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for len(out) < n {
		msgs, err := receive(ctx, e, e.DLQURL, 1)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d dead letters after %v", len(out), n, timeout)
		}
		if err != nil {
			t.Fatalf("receive dead letters: %v", err)
		}
		for _, m := range msgs {
			out = append(out, DeadLetter{Body: aws.ToString(m.Body), Attributes: attributes(m)})
		}
	}
	return out
}

// QueueDepth is the number of messages in a queue, visible or in flight
// (Depth; a failure fails t).
func QueueDepth(t testing.TB, e *stacktest.Env, url string) int {
	t.Helper()
	n, err := Depth(t.Context(), e.SQS, url)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Depth is a queue's ApproximateNumberOfMessages plus
// ApproximateNumberOfMessagesNotVisible. (kumo counts a message whose
// visibility ran out as not visible until the next receive puts it back.)
func Depth(ctx context.Context, api *sqs.Client, url string) (int, error) {
	c, err := queues.CountMessages(ctx, api, url)
	return c.Total(), err
}

// Line is one line the worker wrote on stdout.
type Line struct {
	Raw    string
	Fields map[string]any // nil when the line is not a JSON object
	// Err says why Raw is not one JSON object with every key once (see
	// DecodeStrict); nil when it is.
	Err error
}

// DecodeStrict decodes raw as one JSON object and fails, unlike
// encoding/json, when any object in it has a key twice: log pipelines that
// refuse such lines (or keep only one value) would lose it.
func DecodeStrict(raw string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := checkValue(dec); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value on the line")
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// checkValue reads one JSON value from dec, checking its objects' keys.
func checkValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			k := key.(string)
			if seen[k] {
				return fmt.Errorf("key %q twice", k)
			}
			seen[k] = true
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // }
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ]
		return err
	}
	return nil
}

// durationWords are what a key of a duration holds, one way or another.
var durationWords = regexp.MustCompile(`duration|timeout|took|elapsed|latency|wait|delay|interval|retry_in|_for$|since|uptime|backoff`)

// CheckDurationKeys fails for each duration in the lines that is not named
// *_ms (CONTRACT.md, Logs): a number under a key that names a duration
// (took, visibility_timeout, …) without the suffix, or a duration written
// as text ("30s") under any key. The values of timings_ms are milliseconds
// by their object's name.
func CheckDurationKeys(t testing.TB, lines []Line) {
	t.Helper()
	for _, l := range lines {
		for _, bad := range DurationProblems(l.Fields) {
			t.Errorf("duration %s not in *_ms: %s", bad, l.Raw)
		}
	}
}

// DurationProblems lists the keys of a log line's fields that hold a
// duration not named *_ms (see CheckDurationKeys).
func DurationProblems(fields map[string]any) []string { return badDurations(fields, "") }

func badDurations(v any, key string) []string {
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		if strings.HasSuffix(key, "_ms") {
			return nil
		}
		for k, x := range v {
			bad = append(bad, badDurations(x, k)...)
		}
	case []any:
		for _, x := range v {
			bad = append(bad, badDurations(x, key)...)
		}
	case float64, json.Number:
		if durationWords.MatchString(key) && !strings.HasSuffix(key, "_ms") {
			bad = append(bad, key)
		}
	case string:
		if _, err := time.ParseDuration(v); err == nil && v != "0" {
			bad = append(bad, fmt.Sprintf("%s=%q", key, v))
		}
	}
	return bad
}

// Str is a string field ("" when absent or not a string).
func (l Line) Str(key string) string {
	s, _ := l.Fields[key].(string)
	return s
}

// Msg is the line's message.
func (l Line) Msg() string { return l.Str("message") }

// Level is the line's level.
func (l Line) Level() string { return l.Str("level") }

// Logs collects the worker's stdout line by line; it is an io.Writer, safe
// for concurrent use.
type Logs struct {
	mu      sync.Mutex
	partial []byte
	lines   []Line
	changed chan struct{}
}

// NewLogs returns an empty Logs.
func NewLogs() *Logs { return &Logs{changed: make(chan struct{})} }

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		raw := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		line := Line{Raw: raw}
		line.Fields, line.Err = DecodeStrict(raw)
		if line.Err != nil {
			_ = json.Unmarshal([]byte(raw), &line.Fields) // as far as it goes
		}
		l.lines = append(l.lines, line)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// Malformed returns the lines that are not one JSON object with every key
// once.
func (l *Logs) Malformed() []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []Line
	for _, line := range l.lines {
		if line.Err != nil {
			bad = append(bad, line)
		}
	}
	return bad
}

// Lines returns the complete lines so far.
func (l *Logs) Lines() []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// Wait waits until cond holds for the lines so far, failing the test after
// timeout.
func (l *Logs) Wait(t testing.TB, timeout time.Duration, what string, cond func([]Line) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok, ch := cond(l.lines), l.changed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waited %v for %s in the worker's log", timeout, what)
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		}
	}
}

// Count is the number of lines with message msg and, if eventID is not
// empty, that event_id.
func Count(lines []Line, msg, eventID string) int {
	n := 0
	for _, l := range lines {
		if l.Msg() == msg && (eventID == "" || l.Str("event_id") == eventID) {
			n++
		}
	}
	return n
}

// Log messages of the worker's per-event lines.
const (
	// LogPreprocessed is the line of a user message whose result was published.
	LogPreprocessed = "message preprocessed"
	// LogHandled is the line of any other event handled (assistant message, mute, unmute).
	LogHandled = "event handled"
)

// Weaviate reads what the worker stored, over Weaviate's REST API directly
// (not through the worker's store package). Key is the API key, for a
// server that wants one.
type Weaviate struct {
	URL string
	Key string
}

var weaviateClient = &http.Client{Timeout: 10 * time.Second}

func (w Weaviate) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if w.Key != "" {
		req.Header.Set("Authorization", "Bearer "+w.Key)
	}
	resp, err := weaviateClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// tenant is the tenant of the messages collection that holds chatID's
// messages ("" without tenants), from the collection's tenants.
func (w Weaviate) tenant(ctx context.Context, chatID string) (string, error) {
	status, b, err := w.do(ctx, http.MethodGet, "/v1/schema/"+store.MessagesCollection+"/tenants", nil)
	if err != nil {
		return "", fmt.Errorf("list tenants: %w", err)
	}
	var ts []struct{ Name string }
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &ts); err != nil {
			return "", fmt.Errorf("list tenants: %w", err)
		}
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return store.ChatTenant(chatID, names) // no tenants (a 422 too): ""
}

// Count returns the number of the chat's message objects.
func (w Weaviate) Count(ctx context.Context, chatID string) (int, error) {
	return w.CountIn(ctx, store.MessagesCollection, chatID)
}

// CountIn returns the number of the chat's objects in collection (by
// their chat_id), in the chat's tenant when the collection is the
// messages collection and has tenants.
func (w Weaviate) CountIn(ctx context.Context, collection, chatID string) (int, error) {
	args := ""
	if collection == store.MessagesCollection {
		tenant, err := w.tenant(ctx, chatID)
		if err != nil {
			return 0, fmt.Errorf("count stored messages: %w", err)
		}
		if tenant != "" {
			args = fmt.Sprintf("tenant:%q,", tenant)
		}
	}
	q := fmt.Sprintf(`{Aggregate{%s(%swhere:{path:["chat_id"],operator:Equal,valueText:%q}){meta{count}}}}`, collection, args, chatID)
	body, _ := json.Marshal(map[string]string{"query": q})
	status, b, err := w.do(ctx, http.MethodPost, "/v1/graphql", body)
	if err != nil {
		return 0, fmt.Errorf("count stored messages: %w", err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("count stored messages: status %d: %s", status, b)
	}
	var out struct {
		Data struct {
			Aggregate map[string][]struct {
				Meta struct{ Count int }
			}
		}
		Errors []struct{ Message string }
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("count stored messages: %w", err)
	}
	if len(out.Errors) > 0 {
		return 0, fmt.Errorf("count stored messages: %s", out.Errors[0].Message)
	}
	agg := out.Data.Aggregate[collection]
	if len(agg) != 1 {
		return 0, fmt.Errorf("count stored messages: %d groups", len(agg))
	}
	return agg[0].Meta.Count, nil
}

// Get returns the properties of an event's stored message, fetched by its
// deterministic id (nil when there is none).
func (w Weaviate) Get(ctx context.Context, chatID, eventID string) (map[string]any, error) {
	tenant, err := w.tenant(ctx, chatID)
	if err != nil {
		return nil, fmt.Errorf("get stored message of %s: %w", eventID, err)
	}
	path := "/v1/objects/" + store.MessagesCollection + "/" + store.MessageID(chatID, eventID)
	if tenant != "" {
		path += "?tenant=" + url.QueryEscape(tenant)
	}
	status, b, err := w.do(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("get stored message of %s: %w", eventID, err)
	case status == http.StatusNotFound:
		return nil, nil
	case status != http.StatusOK:
		return nil, fmt.Errorf("get stored message of %s: status %d: %s", eventID, status, b)
	}
	var obj struct{ Properties map[string]any }
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("get stored message of %s: %w", eventID, err)
	}
	return obj.Properties, nil
}

// Exists tells whether an object of collection with id is stored (a GET by
// its id, naming no tenant: for the state collection; a message is Get's).
func (w Weaviate) Exists(ctx context.Context, collection, id string) (bool, error) {
	status, b, err := w.do(ctx, http.MethodGet, "/v1/objects/"+collection+"/"+id, nil)
	switch {
	case err != nil:
		return false, fmt.Errorf("get object %s: %w", id, err)
	case status == http.StatusNotFound:
		return false, nil
	case status != http.StatusOK:
		return false, fmt.Errorf("get object %s: status %d: %s", id, status, b)
	}
	return true, nil
}

// Stored counts the chat's message objects (Count; a failure fails t).
func (w Weaviate) Stored(t testing.TB, chatID string) int {
	t.Helper()
	n, err := w.Count(t.Context(), chatID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Object is Get; a failure fails t.
func (w Weaviate) Object(t testing.TB, chatID, eventID string) map[string]any {
	t.Helper()
	props, err := w.Get(t.Context(), chatID, eventID)
	if err != nil {
		t.Fatal(err)
	}
	return props
}

// Sample is one line of samples/events.jsonl.
type Sample struct {
	Line int    // 1-based
	Raw  string // as in the file
	// Fields is the line as a JSON object; nil when it is not one.
	Fields map[string]any
}

// Samples reads the project's sample chats.
func Samples(t testing.TB) []Sample {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "samples", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Sample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		s := Sample{Line: n, Raw: sc.Text()}
		if json.Unmarshal(sc.Bytes(), &s.Fields) != nil {
			s.Fields = nil
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Namespaced is the sample as sent into e's namespace: its chat id becomes
// e.ChatID(chat id). A line that is not a JSON object is sent as it is, in
// a group of its own.
func (s Sample) Namespaced(e *stacktest.Env) Msg {
	if s.Fields == nil {
		return Msg{Body: s.Raw, Group: e.ChatID("unparsable"), Dedup: fmt.Sprintf("line-%d", s.Line)}
	}
	f := make(map[string]any, len(s.Fields))
	for k, v := range s.Fields {
		f[k] = v
	}
	if chat, ok := f["chat_id"].(string); ok {
		f["chat_id"] = e.ChatID(chat)
	}
	m := Event(f)
	if m.Group == "" {
		m.Group = e.ChatID("no-chat")
	}
	if _, ok := f["event_id"].(string); !ok || !validDedup(m.Dedup) {
		m.Dedup = fmt.Sprintf("line-%d", s.Line)
	}
	return m
}

// validDedup tells whether SQS accepts id as a deduplication id.
func validDedup(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < '!' || r > '~' {
			return false
		}
	}
	return true
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

// ContractKeys are the result's top-level keys (CONTRACT.md) that every
// result has; superseded_by is there only when set (OptionalKeys).
var ContractKeys = []string{"event_id", "chat_id", "route", "muted", "history", "relevant", "tokens", "burst", "references",
	"degraded", "timings_ms", "worker", "processed_at"}

// OptionalKeys are the result's keys present only when they have a value.
var OptionalKeys = []string{"superseded_by"}

// ContractTimings are the timings_ms keys CONTRACT.md shows.
var ContractTimings = []string{"message_history", "relevance_search", "muted_status", "preprocessing", "total"}

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
	want := slices.Sorted(slices.Values(ContractKeys))
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
	for _, k := range ContractTimings {
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
func CheckEventLines(t testing.TB, lines []Line, events []event.Event, results map[string]Result) {
	t.Helper()
	for _, ev := range events {
		msg := LogHandled
		if ev.Type == event.TypeMessage && ev.Role == event.RoleUser {
			msg = LogPreprocessed
		}
		if n := Count(lines, msg, ev.EventID); n != 1 {
			t.Errorf("%s: %d %q lines, want 1", ev.EventID, n, msg)
		}
	}
	for _, l := range lines {
		if l.Fields == nil {
			t.Errorf("log line is not JSON: %s", l.Raw)
			continue
		}
		if l.Msg() != LogPreprocessed {
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
		for _, k := range ContractTimings {
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

// CheckNoText fails if any line at info or above holds a message text (or
// the start of one).
func CheckNoText(t testing.TB, lines []Line, texts []string) {
	t.Helper()
	for _, l := range lines {
		if l.Level() == "debug" || l.Level() == "trace" {
			continue
		}
		for _, txt := range texts {
			if strings.Contains(l.Raw, txt) || len(txt) > 24 && strings.Contains(l.Raw, txt[:24]) {
				t.Errorf("a message text is logged at %s: %s", l.Level(), l.Raw)
			}
		}
	}
}

// DebugVars reads a worker's /debug/vars at addr (its HEALTH_ADDR).
func DebugVars(addr string) (map[string]any, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/debug/vars")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/debug/vars: status %d", resp.StatusCode)
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("/debug/vars: %w", err)
	}
	return v, nil
}
