package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// A chat's muted state is ordered by the events' own time, never by when a
// worker applied them: a mute redelivered (or redriven) after the chat's
// unmute must not mute it again.
//
// Weaviate (v1.35.2) cannot write an object conditionally: no version, no
// If-Match, no compare-and-set (weaviate/weaviate#11541 and #11544 propose
// them; they are not in any release this worker supports). One state object
// per chat, read, compared and written back, would let two workers regress
// it: both read the state at t0, the one applying the newer event writes
// first, the other overwrites it with the older. FIFO queues keep one event
// of a chat in flight at a time, but standard queues do not, nor does a
// redelivery racing a handler whose lease was lost.
//
// So no state is ever overwritten with another. Each mute or unmute is its
// own object in StateCollection (id StateEntryID(chat, event): a
// redelivery writes the same object again), holding its time (sent_at), and
// the state is the newest of them, chosen on read: ties at the same time go
// to the greater event id, the same in every worker. Concurrent writers
// cannot regress what readers see, whatever order their writes land in;
// there is no window to minimise.
//
// Reading costs one REST GET by id for a chat that was never muted or
// unmuted, as before: the object at StateID(chat), the chat's head, tells
// whether there is anything to read. It is written after the chat's first
// entry, holds no state (no muted, no chat_id, so no search finds it), and
// is only ever written with the same content. A chat with a head costs a
// search of its entries besides (sorted by sent_at, at most stateEntries).
//
// Before this, the object at StateID held the state itself (muted, until,
// event_id, updated_at). Such a legacy object still counts, as it is, until
// the chat's next mute or unmute: that one first writes it as an entry of
// its own, timed when it was applied (updated_at), and then the head over
// it. While a worker of the older version still runs (a rolling deploy),
// what it writes replaces the head and counts alone again until the next
// newer worker converts it.

// stateEntries bounds the entries a read fetches: the newest, and room for
// others sent in the same instant.
const stateEntries = 10

// stateEntry is one mute or unmute applied to a chat.
type stateEntry struct {
	eventID string
	muted   bool
	until   *time.Time
	sentAt  time.Time
}

// after tells whether e wins over o: a later time, or at the same time
// the greater event id.
func (e stateEntry) after(o stateEntry) bool {
	if c := e.sentAt.Compare(o.sentAt); c != 0 {
		return c > 0
	}
	return e.eventID > o.eventID
}

// newestEntry is the entry that wins, false when there is none.
func newestEntry(entries []stateEntry) (stateEntry, bool) {
	if len(entries) == 0 {
		return stateEntry{}, false
	}
	best := entries[0]
	for _, e := range entries[1:] {
		if e.after(best) {
			best = e
		}
	}
	return best, true
}

// chatState is a chat's muted state.
type chatState struct {
	muted bool
	until *time.Time
}

// mutedAt applies the rule: muted, and either for good or until a time still
// after at.
func (st chatState) mutedAt(at time.Time) bool {
	return st.muted && (st.until == nil || st.until.After(at))
}

// headObject is the REST shape of the object at StateID: a head (no
// muted), or a legacy state.
type headObject struct {
	Properties struct {
		Muted     *bool      `json:"muted"`
		Until     *time.Time `json:"until"`
		EventID   string     `json:"event_id"`
		UpdatedAt *time.Time `json:"updated_at"`
	} `json:"properties"`
}

// head is what the object at StateID says.
type head struct {
	found  bool        // there is one
	legacy *stateEntry // it holds a state of its own (written before entries)
}

// chatHead reads the chat's head: one REST GET by its deterministic id, no
// query parsing. 404 means no mute or unmute was ever applied to the chat.
func (s *Store) chatHead(ctx context.Context, chatID string) (head, error) {
	status, body, err := s.rest(ctx, http.MethodGet, "/objects/"+StateCollection+"/"+StateID(chatID))
	if err != nil {
		return head{}, err
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		return head{}, nil
	default:
		return head{}, s.statusError(status, body)
	}
	var obj headObject
	if err := json.Unmarshal(body, &obj); err != nil {
		return head{}, &Error{Kind: KindRejected, Detail: "unexpected answer", Err: err}
	}
	h := head{found: true}
	if p := obj.Properties; p.Muted != nil {
		e := stateEntry{eventID: p.EventID, muted: *p.Muted, until: p.Until}
		if p.UpdatedAt != nil {
			e.sentAt = *p.UpdatedAt
		}
		h.legacy = &e
	}
	return h, nil
}

// Muted tells whether the chat is muted at time at: its newest mute or
// unmute (see above) is a mute whose Until, if any, is after at. A chat
// never muted is not muted (also when the state collection does not exist
// yet: then no chat can have been muted).
func (s *Store) Muted(ctx context.Context, chatID string, at time.Time) (bool, error) {
	if s.closed.Load() {
		return false, fmt.Errorf("muted state of chat %s: %w", chatID, s.closedError())
	}
	st, err := s.chatState(ctx, chatID)
	if err != nil {
		s.calls.failed.Add(1)
		return false, fmt.Errorf("muted state of chat %s: %w", chatID, err)
	}
	return st.mutedAt(at), nil
}

func (s *Store) chatState(ctx context.Context, chatID string) (chatState, error) {
	s.calls.muted.Add(1)
	h, err := s.chatHead(ctx, chatID)
	switch {
	case err != nil || !h.found:
		return chatState{}, err
	case h.legacy != nil:
		return chatState{muted: h.legacy.muted, until: h.legacy.until}, nil
	}
	s.calls.states.Add(1)
	entries, err := s.path().states(ctx, chatID, stateEntries)
	if err != nil {
		return chatState{}, err
	}
	e, _ := newestEntry(entries)
	return chatState{muted: e.muted, until: e.until}, nil
}

// SetMuted applies a mute or unmute event to the chat's state, ordered by
// ev.SentAt (the event's sent_at, or the time SQS received it: the caller
// says; zero is the time of this call): it takes effect unless the chat
// already has a newer one, whatever order the events arrive or are
// applied in, by any number of workers at once. A mute without Until lasts
// until a newer unmute. It is idempotent: applying an event again writes
// the same object.
func (s *Store) SetMuted(ctx context.Context, ev event.Event) error {
	if err := s.setMuted(ctx, ev); err != nil {
		return fmt.Errorf("set muted state of chat %s (event %s): %w", ev.ChatID, ev.EventID, err)
	}
	return nil
}

func (s *Store) setMuted(ctx context.Context, ev event.Event) error {
	if s.closed.Load() {
		return s.closedError()
	}
	if ev.ChatID == "" || ev.EventID == "" {
		return &Error{Kind: KindRejected, Detail: "chat id and event id are required"}
	}
	e := stateEntry{eventID: ev.EventID, sentAt: ev.SentAt}
	switch ev.Type {
	case event.TypeMute:
		e.muted, e.until = true, ev.Until
	case event.TypeUnmute:
	default:
		return &Error{Kind: KindRejected, Detail: fmt.Sprintf("event type %q is neither mute nor unmute", ev.Type)}
	}
	if e.sentAt.IsZero() {
		e.sentAt = time.Now()
	}
	s.calls.muted.Add(1)
	h, err := s.chatHead(ctx, ev.ChatID)
	if err != nil {
		return err
	}
	objs := []writeObject{entryObject(ev.ChatID, e)}
	if h.legacy != nil && h.legacy.eventID != ev.EventID {
		objs = append(objs, entryObject(ev.ChatID, *h.legacy))
	}
	if err := s.putAll(ctx, objs); err != nil {
		return err
	}
	if h.found && h.legacy == nil {
		return nil
	}
	// The head last: a reader that finds it finds the entries.
	return s.batcher.put(ctx, writeObject{collection: StateCollection, id: StateID(ev.ChatID), props: objectProps{
		propEventID:   validText(ev.EventID),
		propUpdatedAt: time.Now().UTC().Format(time.RFC3339Nano),
	}})
}

// entryObject is the object of one mute or unmute of the chat.
func entryObject(chatID string, e stateEntry) writeObject {
	props := objectProps{
		propChatID:    validText(chatID),
		propEventID:   validText(e.eventID),
		propMuted:     e.muted,
		propSentAt:    e.sentAt.UTC().Format(time.RFC3339Nano),
		propUpdatedAt: time.Now().UTC().Format(time.RFC3339Nano),
	}
	if e.until != nil {
		props[propUntil] = e.until.UTC().Format(time.RFC3339Nano)
	}
	return writeObject{collection: StateCollection, id: StateEntryID(chatID, e.eventID), props: props}
}

// putAll writes objs (in one batch request when they arrive together) and
// returns once each is written or failed.
func (s *Store) putAll(ctx context.Context, objs []writeObject) error {
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Go(func() { errs[i] = s.batcher.put(ctx, o) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
