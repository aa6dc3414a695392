package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/refs"
)

// fetchQuery is a filtered search of one chat's messages: chat_id equal,
// and every condition that is set.
type fetchQuery struct {
	chatID      string
	anyProp     string    // with anyOf: the property must hold one of them
	anyOf       []string  //
	trueProp    string    // a boolean property that must be true
	before      time.Time // sent_at <= before; zero: no such filter
	props       []string  // what to return
	newestFirst bool      // sorted by sent_at, newest first; else unsorted
	limit       int
}

// Recent returns the newest limit messages of the chat, both roles, with
// sent_at <= before, oldest first: one search sorted by sent_at (see
// History; the same search without the role).
func (s *Store) Recent(ctx context.Context, chatID string, before time.Time, limit int) ([]event.ContextMessage, error) {
	return s.History(ctx, chatID, "", before, limit)
}

// ReplyWindow bounds a passage's neighbours: the messages that follow a hit
// within this long after it. A message sent later starts another
// conversation; it is not the hit's reply.
const ReplyWindow = time.Hour

// chatTime is the value of chat_time: the chat's scope with the UTC hour
// of t ("h" key) and with its minute ("m" key), two tokens. Following finds
// a hit's neighbours by them: equality lookups in the chat's own posting
// lists, where a range filter on sent_at would be evaluated over the whole
// collection (measured: a search with twenty sent_at ranges cost Weaviate
// 9.4 ms of CPU, a history search 0.56 ms).
func chatTime(chatID string, t time.Time) string {
	return hourKey(chatID, t) + " " + minuteKey(chatID, t)
}

func hourKey(chatID string, t time.Time) string {
	return chatScope(chatID) + "h" + t.UTC().Format("2006-01-02T15")
}

func minuteKey(chatID string, t time.Time) string {
	return chatScope(chatID) + "m" + t.UTC().Format("2006-01-02T15:04")
}

// followingSlack bounds the objects one Following search returns, per hit.
const followingSlack = 16

// quickReply is how far the first Following search looks after each hit:
// the minute of the hit and the next two, so at least two minutes. Most
// replies come within that, and it returns a few messages per hit where an
// hour of a busy chat holds dozens.
const quickReply = 2 * time.Minute

// Following returns, for each hit, the n messages of the chat that follow it
// (sent after it, within ReplyWindow), in time order, keyed by the hit's
// event id; hits without any are absent. A first search asks for the
// messages sent in the hits' minutes and the two after (chat_time), which
// settles every hit that has its n followers within them; a second, for the
// hits still short, asks for their hours and the hours after, which hold
// every message within ReplyWindow. At most followingSlack messages per hit
// each. Messages stored before chat_time existed are not found.
func (s *Store) Following(ctx context.Context, chatID string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("messages following relevant ones of chat %s: %w", chatID, s.closedError())
	}
	out := map[string][]event.ContextMessage{}
	if n <= 0 || len(hits) == 0 {
		return out, nil
	}
	var minutes []string
	for _, h := range hits {
		for d := time.Duration(0); d <= quickReply; d += time.Minute {
			minutes = appendNew(minutes, minuteKey(chatID, h.SentAt.Add(d)))
		}
	}
	msgs, err := s.followers(ctx, chatID, minutes, len(hits))
	if err != nil {
		return nil, err
	}
	var short []event.ContextMessage
	for _, h := range hits {
		// Within the minutes searched, the first n after the hit are the
		// first n of the chat; fewer, and later ones may come.
		if f := after(msgs, h, n, h.SentAt.Truncate(time.Minute).Add(quickReply+time.Minute)); len(f) == n {
			out[h.EventID] = f
		} else {
			short = append(short, h)
		}
	}
	if len(short) == 0 {
		return out, nil
	}
	var hours []string
	for _, h := range short {
		hours = appendNew(hours, hourKey(chatID, h.SentAt))
		hours = appendNew(hours, hourKey(chatID, h.SentAt.Add(ReplyWindow)))
	}
	if msgs, err = s.followers(ctx, chatID, hours, len(short)); err != nil {
		return nil, err
	}
	for _, h := range short {
		if f := after(msgs, h, n, h.SentAt.Add(ReplyWindow)); len(f) > 0 {
			out[h.EventID] = f
		}
	}
	return out, nil
}

// followers is one Following search: the chat's messages with one of keys
// in chat_time, at most followingSlack per hit, in time order.
func (s *Store) followers(ctx context.Context, chatID string, keys []string, hits int) ([]event.ContextMessage, error) {
	s.calls.following.Add(1)
	rows, err := s.path().fetch(ctx, fetchQuery{chatID: chatID, anyProp: propChatTime, anyOf: keys,
		props: s.msgProps, limit: min(hits*followingSlack, 1000)})
	if err != nil {
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("messages following relevant ones of chat %s: %w", chatID, err)
	}
	msgs := make([]event.ContextMessage, len(rows))
	for i, r := range rows {
		msgs[i] = s.messageFrom(r)
	}
	slices.SortStableFunc(msgs, func(a, b event.ContextMessage) int {
		if d := a.SentAt.Compare(b.SentAt); d != 0 {
			return d
		}
		return roleRank(a.Role) - roleRank(b.Role)
	})
	return msgs, nil
}

// after is the first n of msgs (in time order) that follow hit, sent no
// later than end: strictly later, or as late and the assistant's answer
// to the user's hit.
func after(msgs []event.ContextMessage, hit event.ContextMessage, n int, end time.Time) []event.ContextMessage {
	i, _ := slices.BinarySearchFunc(msgs, hit.SentAt, func(m event.ContextMessage, t time.Time) int { return m.SentAt.Compare(t) })
	var f []event.ContextMessage
	for ; i < len(msgs) && len(f) < n && !msgs[i].SentAt.After(end); i++ {
		m := msgs[i]
		if m.EventID == hit.EventID || m.SentAt.Equal(hit.SentAt) && roleRank(m.Role) <= roleRank(hit.Role) {
			continue // the hit, or as old as it and not after it in a chat's order
		}
		f = append(f, m)
	}
	return f
}

func appendNew(keys []string, k string) []string {
	if slices.Contains(keys, k) {
		return keys
	}
	return append(keys, k)
}

func roleRank(r event.Role) int {
	if r == event.RoleAssistant {
		return 1
	}
	return 0
}

// referencesSlack is how many more messages References reads than it may
// return references: a reference mentioned again takes one message each
// time.
const referencesSlack = 3

// References returns the chat's ERP references (internal/refs) in the
// messages sent at or before before, newest mention first, one entry per
// reference, at most limit: one search for the newest messages that have
// any (has_refs), sorted by sent_at. Messages stored before refs existed are
// not found (the pipeline also reads the history window's texts).
func (s *Store) References(ctx context.Context, chatID string, before time.Time, limit int) ([]event.Reference, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("references of chat %s: %w", chatID, s.closedError())
	}
	out := []event.Reference{}
	if limit <= 0 {
		return out, nil
	}
	s.calls.references.Add(1)
	// Without a sent_at filter, which costs more than the search (see
	// History); a newer message is skipped here.
	rows, err := s.path().fetch(ctx, fetchQuery{chatID: chatID, trueProp: propHasRefs,
		props: []string{propEventID, propSentAt, propRefs}, newestFirst: true, limit: limit * referencesSlack})
	if err != nil {
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("references of chat %s: %w", chatID, err)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		at, _ := parseDate(r.text(propSentAt))
		if at.After(before) && !before.IsZero() {
			continue
		}
		for _, ref := range refs.Decode(r.text(propRefs)) {
			if len(out) < limit && !seen[ref.Ref] {
				seen[ref.Ref] = true
				out = append(out, event.Reference{Ref: ref.Ref, Kind: ref.Kind, EventID: r.text(propEventID), SentAt: at})
			}
		}
	}
	return out, nil
}
