package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
)

// fakeStore is a Store whose methods are function fields; an unset field
// answers with nothing and no error.
type fakeStore struct {
	RecentFunc     func(ctx context.Context, chatID string, before time.Time, limit int) ([]event.ContextMessage, error)
	RelevantFunc   func(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error)
	FollowingFunc  func(ctx context.Context, chatID string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error)
	ReferencesFunc func(ctx context.Context, chatID string, before time.Time, limit int) ([]event.Reference, error)
	MutedFunc      func(ctx context.Context, chatID string, at time.Time) (bool, error)
	PutFunc        func(ctx context.Context, ev event.Event) error
	SetMutedFunc   func(ctx context.Context, ev event.Event) error

	mu    sync.Mutex
	calls []string // method names, in call order
}

var _ pipeline.Store = (*fakeStore)(nil)

func (f *fakeStore) record(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeStore) called(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeStore) Recent(ctx context.Context, chatID string, before time.Time, limit int) ([]event.ContextMessage, error) {
	f.record("Recent")
	if f.RecentFunc == nil {
		return nil, nil
	}
	return f.RecentFunc(ctx, chatID, before, limit)
}

func (f *fakeStore) Following(ctx context.Context, chatID string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
	f.record("Following")
	if f.FollowingFunc == nil {
		return nil, nil
	}
	return f.FollowingFunc(ctx, chatID, hits, n)
}

func (f *fakeStore) References(ctx context.Context, chatID string, before time.Time, limit int) ([]event.Reference, error) {
	f.record("References")
	if f.ReferencesFunc == nil {
		return nil, nil
	}
	return f.ReferencesFunc(ctx, chatID, before, limit)
}

func (f *fakeStore) Relevant(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error) {
	f.record("Relevant")
	if f.RelevantFunc == nil {
		return nil, nil
	}
	return f.RelevantFunc(ctx, chatID, text, before, limit)
}

func (f *fakeStore) Muted(ctx context.Context, chatID string, at time.Time) (bool, error) {
	f.record("Muted")
	if f.MutedFunc == nil {
		return false, nil
	}
	return f.MutedFunc(ctx, chatID, at)
}

func (f *fakeStore) Put(ctx context.Context, ev event.Event) error {
	f.record("Put")
	if f.PutFunc == nil {
		return nil
	}
	return f.PutFunc(ctx, ev)
}

func (f *fakeStore) SetMuted(ctx context.Context, ev event.Event) error {
	f.record("SetMuted")
	if f.SetMutedFunc == nil {
		return nil
	}
	return f.SetMutedFunc(ctx, ev)
}

// fakePublisher records the results it accepts; PublishFunc may refuse.
type fakePublisher struct {
	PublishFunc func(ctx context.Context, r *event.Result) error

	mu      sync.Mutex
	results []event.Result // copies, as JSON round trips
	bodies  []string
}

var _ pipeline.Publisher = (*fakePublisher)(nil)

func (f *fakePublisher) Publish(ctx context.Context, r *event.Result) error {
	if f.PublishFunc != nil {
		if err := f.PublishFunc(ctx, r); err != nil {
			return err
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var copied event.Result
	if err := json.Unmarshal(body, &copied); err != nil {
		return err
	}
	f.mu.Lock()
	f.results = append(f.results, copied)
	f.bodies = append(f.bodies, string(body))
	f.mu.Unlock()
	return nil
}

func (f *fakePublisher) published() []event.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event.Result(nil), f.results...)
}

// fakeMetrics records every value.
type fakeMetrics struct {
	mu     sync.Mutex
	values map[string][]float64 // "name/route" → values (durations in ms)
}

var _ pipeline.Metrics = (*fakeMetrics)(nil)

func (f *fakeMetrics) Duration(name, route string, d time.Duration) {
	f.add(name, route, float64(d)/float64(time.Millisecond))
}

func (f *fakeMetrics) Count(name, route string, n float64) { f.add(name, route, n) }

func (f *fakeMetrics) add(name, route string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.values == nil {
		f.values = map[string][]float64{}
	}
	key := name + "/" + route
	f.values[key] = append(f.values[key], v)
}

func (f *fakeMetrics) get(name, route string) []float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.values[name+"/"+route]
}

// msg builds a context message of the chat.
func msg(id string, role event.Role, minute int) event.ContextMessage {
	return event.ContextMessage{EventID: id, Role: role, Text: "text of " + id, SentAt: at(minute)}
}

// wordCounter counts one token per word: easy to reason about in tests.
type wordCounter struct{}

func (wordCounter) Count(text string) int { return len(strings.Fields(text)) }

func at(minute int) time.Time { return time.Date(2026, 11, 28, 10, minute, 0, 0, time.UTC) }

// userEvent is the body of a user message event sent at minute 30.
func userEvent(id, chat, text string, extra ...string) string {
	body := fmt.Sprintf(`{"event_id":%q,"chat_id":%q,"text":%q,"sent_at":%q`, id, chat, text, at(30).Format(time.RFC3339))
	for i := 0; i+1 < len(extra); i += 2 {
		body += fmt.Sprintf(",%q:%q", extra[i], extra[i+1])
	}
	return body + "}"
}

// syncBuffer is a bytes buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// logLines decodes the JSON lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(b.String()))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log is not JSON lines: %v", err)
		}
		out = append(out, m)
	}
	return out
}
