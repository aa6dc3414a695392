// Package memstore is a benchmark-only stand-in for the Weaviate store: it
// answers every call at once from memory, so a worker that uses it spends
// only its own CPU (SQS handling, the pool, combining, publishing). It exists
// to measure that overhead (bench row 3) and must never serve real traffic:
// relevance is not searched, only the chat's oldest messages are returned
// with made-up scores.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/tokens"
)

// BenchOnlyMemoryStore keeps each chat's messages in memory, starting from
// the benchmark's seed (workload.Seed) the first time a chat is used, each
// with its token count as the Weaviate store keeps it.
type BenchOnlyMemoryStore struct {
	chats  sync.Map // chat id → *chat
	tokens *tokens.Counter
}

var _ pipeline.Store = (*BenchOnlyMemoryStore)(nil)

// New returns an empty BenchOnlyMemoryStore.
func New() *BenchOnlyMemoryStore {
	c, err := tokens.New(tokens.DefaultEncoding)
	if err != nil {
		panic(err) // the default encoding is compiled in
	}
	return &BenchOnlyMemoryStore{tokens: c}
}

type chat struct {
	mu    sync.Mutex
	msgs  []event.ContextMessage // by sent_at
	muted bool
	until *time.Time
	// stateAt is the time of the event that set muted and until.
	stateAt time.Time
}

func (s *BenchOnlyMemoryStore) chat(id string) *chat {
	if c, ok := s.chats.Load(id); ok {
		return c.(*chat)
	}
	seed := workload.Seed(id)
	c := &chat{msgs: make([]event.ContextMessage, len(seed), len(seed)+64)}
	for i, ev := range seed {
		c.msgs[i] = event.ContextMessage{EventID: ev.EventID, Role: ev.Role, Text: ev.Text, SentAt: ev.SentAt, Tokens: s.tokens.Count(ev.Text)}
	}
	actual, _ := s.chats.LoadOrStore(id, c)
	return actual.(*chat)
}

// Recent returns the newest limit messages sent at or before before,
// oldest first.
func (s *BenchOnlyMemoryStore) Recent(_ context.Context, chatID string, before time.Time, limit int) ([]event.ContextMessage, error) {
	c := s.chat(chatID)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]event.ContextMessage, 0, limit)
	for i := len(c.msgs) - 1; i >= 0 && len(out) < limit; i-- {
		if m := c.msgs[i]; !m.SentAt.After(before) {
			out = append(out, m)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Relevant returns the chat's oldest limit messages with falling made-up
// scores: no search, so that it costs nothing.
func (s *BenchOnlyMemoryStore) Relevant(_ context.Context, chatID, _ string, before time.Time, limit int) ([]event.ContextMessage, error) {
	c := s.chat(chatID)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]event.ContextMessage, 0, limit)
	for _, m := range c.msgs {
		if len(out) == limit || m.SentAt.After(before) {
			break
		}
		score := 1 / float64(len(out)+1)
		m.Score = &score
		out = append(out, m)
	}
	return out, nil
}

// Following returns each hit's next n messages.
func (s *BenchOnlyMemoryStore) Following(_ context.Context, chatID string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
	c := s.chat(chatID)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]event.ContextMessage{}
	for _, h := range hits {
		for i, m := range c.msgs {
			if m.EventID == h.EventID {
				out[h.EventID] = append([]event.ContextMessage(nil), c.msgs[i+1:min(len(c.msgs), i+1+n)]...)
				break
			}
		}
	}
	return out, nil
}

// References returns no references: the seed has some, and finding them
// would be a search this store exists to leave out.
func (s *BenchOnlyMemoryStore) References(context.Context, string, time.Time, int) ([]event.Reference, error) {
	return []event.Reference{}, nil
}

// Muted tells whether the chat is muted at at.
func (s *BenchOnlyMemoryStore) Muted(_ context.Context, chatID string, at time.Time) (bool, error) {
	c := s.chat(chatID)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.muted && (c.until == nil || c.until.After(at)), nil
}

// Put appends the message (again, if it is delivered again).
func (s *BenchOnlyMemoryStore) Put(_ context.Context, ev event.Event) error {
	c := s.chat(ev.ChatID)
	c.mu.Lock()
	defer c.mu.Unlock()
	n := ev.Tokens // counted by the caller already, as the Weaviate store takes it
	if n <= 0 {
		n = s.tokens.Count(ev.Text)
	}
	m := event.ContextMessage{EventID: ev.EventID, Role: ev.Role, Text: ev.Text, SentAt: ev.SentAt, Tokens: n}
	i := len(c.msgs)
	for i > 0 && c.msgs[i-1].SentAt.After(m.SentAt) {
		i--
	}
	c.msgs = append(c.msgs, event.ContextMessage{})
	copy(c.msgs[i+1:], c.msgs[i:])
	c.msgs[i] = m
	return nil
}

// SetMuted applies a mute or unmute event unless the chat has a newer one
// (by SentAt, as the Weaviate store orders them).
func (s *BenchOnlyMemoryStore) SetMuted(_ context.Context, ev event.Event) error {
	c := s.chat(ev.ChatID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.SentAt.IsZero() {
		ev.SentAt = time.Now()
	}
	if ev.SentAt.Before(c.stateAt) {
		return nil
	}
	c.muted, c.until, c.stateAt = ev.Type == event.TypeMute, ev.Until, ev.SentAt
	return nil
}
