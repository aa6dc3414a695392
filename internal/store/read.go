package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/weaviate/weaviate/entities/models"
)

// Property names of the collections.
const (
	propChatID    = "chat_id"
	propEventID   = "event_id"
	propRole      = "role"
	propUserID    = "user_id"
	propChannel   = "channel"
	propText      = "text"
	propChatTerms = "chat_terms"
	propChatTime  = "chat_time"
	propRefs      = "refs"
	propHasRefs   = "has_refs"
	propSentAt    = "sent_at"
	propMuted     = "muted"
	propUntil     = "until"
	propUpdatedAt = "updated_at"
)

// Searches ask Weaviate without the sent_at <= before filter and drop what
// is newer themselves: that range filter is evaluated over the whole
// collection and costs Weaviate more than the chat's own search (about half
// of a history search's CPU, measured on 15,000 messages), while a chat
// rarely holds messages newer than the event being handled (on a FIFO queue
// its later events come after it). When too many were newer to answer (a
// redriven or replayed old event), the search is made again with the
// filter: the answer is the same either way.

// historySlack is how many more messages a history search asks for than it
// returns, room for messages newer than the event.
const historySlack = 2

// History returns the newest limit messages of the chat by role with
// sent_at <= before, oldest first: one search sorted by sent_at (see above).
func (s *Store) History(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("history of chat %s: %w", chatID, s.closedError())
	}
	if limit <= 0 {
		return []event.ContextMessage{}, nil
	}
	s.calls.history.Add(1)
	msgs, err := s.path().history(ctx, chatID, role, time.Time{}, limit+historySlack)
	if err == nil {
		kept := notAfter(msgs, before)
		if len(kept) < limit && len(msgs) == limit+historySlack { // newer ones crowded the answer
			s.calls.history.Add(1)
			s.calls.refetched.Add(1)
			kept, err = s.path().history(ctx, chatID, role, before, limit)
		}
		msgs = kept[:min(len(kept), limit)]
	}
	if err != nil {
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("history of chat %s (%s): %w", chatID, role, err)
	}
	// Weaviate answers newest first; callers want oldest first.
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return msgs, nil
}

// notAfter keeps the messages sent at or before t, in order.
func notAfter(msgs []event.ContextMessage, t time.Time) []event.ContextMessage {
	kept := msgs[:0]
	for _, m := range msgs {
		if !m.SentAt.After(t) {
			kept = append(kept, m)
		}
	}
	return kept
}

// Relevant returns up to limit of the chat's messages with sent_at <= before
// most relevant to text, best first, with Score set. It is a BM25 search on
// the chat's own terms of the message text (see scopedTerms), or a hybrid
// search on the text when the messages collection has a vectorizer. A text
// without any word (only emoji or punctuation, or only stopwords) finds
// nothing and costs no call.
func (s *Store) Relevant(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("relevant messages of chat %s: %w", chatID, s.closedError())
	}
	words := keywordQuery(text, s.cfg.MaxQueryTerms)
	if limit <= 0 || words == "" {
		return []event.ContextMessage{}, nil
	}
	vi, err := s.vectorInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("relevant messages of chat %s: %w", chatID, err)
	}
	// A hybrid search vectorizes its query: it needs the words themselves,
	// on the text property. BM25 alone asks for the chat's own terms.
	search := relevanceQuery{query: words, prop: propText}
	if !vi.hybrid {
		search = relevanceQuery{query: queryTerms(chatID, text, s.cfg.MaxQueryTerms), prop: propChatTerms}
		if search.query == "" { // only stopwords
			return []event.ContextMessage{}, nil
		}
	}
	s.calls.relevant.Add(1)
	msgs, err := s.path().relevant(ctx, chatID, search, vi, time.Time{}, limit)
	if err == nil {
		kept := notAfter(msgs, before)
		if len(kept) < len(msgs) && len(msgs) == limit { // newer ones took places of older matches
			s.calls.relevant.Add(1)
			s.calls.refetched.Add(1)
			kept, err = s.path().relevant(ctx, chatID, search, vi, before, limit)
		}
		msgs = kept
	}
	if err != nil {
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("relevant messages of chat %s: %w", chatID, err)
	}
	return msgs, nil
}

// relevanceQuery is what a relevance search asks: the query and the
// property it searches.
type relevanceQuery struct {
	query string
	prop  string
}

// vectorInfo is what relevance search needs to know about the messages
// collection's vectors.
type vectorInfo struct {
	hybrid bool   // Weaviate vectorizes the objects: hybrid search works
	target string // the named vector to search, empty for a class-level vectorizer
}

// vectorInfo tells whether the messages collection vectorizes its
// objects, so hybrid search can work. Learned once per Store with the
// collection's other facts: a collection's vectorizer cannot change.
func (s *Store) vectorInfo(ctx context.Context) (vectorInfo, error) {
	f, err := s.facts(ctx)
	if err != nil {
		return vectorInfo{}, err
	}
	return f.vectors, nil
}

// classVectors tells whether Weaviate computes vectors for the class's
// objects: a class-level vectorizer, or a named vector with one (the first
// such by name; a hybrid search targets one vector).
func classVectors(class *models.Class) vectorInfo {
	if v := class.Vectorizer; v != "" && v != "none" {
		return vectorInfo{hybrid: true}
	}
	names := make([]string, 0, len(class.VectorConfig))
	for name := range class.VectorConfig {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if m, ok := class.VectorConfig[name].Vectorizer.(map[string]any); ok {
			for module := range m {
				if module != "none" {
					return vectorInfo{hybrid: true, target: name}
				}
			}
		}
	}
	return vectorInfo{}
}
