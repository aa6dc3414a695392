package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/refs"
)

// Put stores a message event under MessageID(chat id, event id), replacing
// the object if it exists: any number of deliveries leave one object.
// Concurrent Puts share batch requests (see Config.BatchSize); Put returns
// when its own object is written or has failed.
func (s *Store) Put(ctx context.Context, ev event.Event) error {
	if err := s.put(ctx, ev); err != nil {
		return fmt.Errorf("store message %s of chat %s: %w", ev.EventID, ev.ChatID, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, ev event.Event) error {
	if s.closed.Load() {
		return s.closedError()
	}
	if err := checkMessage(ev); err != nil {
		return err
	}
	obj, err := s.messageObject(ctx, ev)
	if err != nil {
		return err
	}
	return s.batcher.put(ctx, obj)
}

// checkMessage refuses what is no message event to store.
func checkMessage(ev event.Event) *Error {
	if ev.Type != "" && ev.Type != event.TypeMessage {
		return &Error{Kind: KindRejected, Detail: fmt.Sprintf("event type %q is not a message", ev.Type)}
	}
	if ev.ChatID == "" || ev.EventID == "" {
		return &Error{Kind: KindRejected, Detail: "chat id and event id are required"}
	}
	return nil
}

// messageObject is the object a message event is stored as, in its chat's
// tenant.
func (s *Store) messageObject(ctx context.Context, ev event.Event) (writeObject, error) {
	tenant, err := s.tenantOf(ctx, ev.ChatID)
	if err != nil {
		return writeObject{}, err
	}
	role := ev.Role
	if role == "" {
		role = event.RoleUser
	}
	props := objectProps{
		propChatID:  validText(ev.ChatID),
		propEventID: validText(ev.EventID),
		propRole:    validText(string(role)),
		propText:    validText(ev.Text),
		// Every word, not MaxQueryTerms: a later query may name any of them.
		propChatTerms: storedTerms(ev.ChatID, ev.Text),
		propSentAt:    ev.SentAt.UTC().Format(time.RFC3339Nano),
	}
	props[propChatTime] = chatTime(ev.ChatID, ev.SentAt)
	if rs := refs.Find(ev.Text); len(rs) > 0 {
		props[propRefs] = refs.Encode(rs)
		props[propHasRefs] = true
	}
	if s.cfg.Tokens != nil {
		n := ev.Tokens // counted by the caller already, in the same encoding
		if n <= 0 {
			n = s.cfg.Tokens.Count(ev.Text)
		}
		props[tokensProp(s.cfg.Tokens.Name())] = n
	}
	if ev.UserID != "" {
		props[propUserID] = validText(ev.UserID)
	}
	if ev.Channel != "" {
		props[propChannel] = validText(ev.Channel)
	}
	return writeObject{
		collection: MessagesCollection,
		tenant:     tenant,
		id:         MessageID(ev.ChatID, ev.EventID),
		props:      props,
	}, nil
}

// validText makes s valid UTF-8: gRPC refuses a whole request with one
// invalid string in it, and JSON would replace the bytes anyway.
func validText(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// sendBatch is the batcher's sendFunc: one batch request, and each item's
// result from the answer under the write-confirmation rule (confirm).
func (s *Store) sendBatch(ctx context.Context, items []*batchItem) {
	s.calls.batches.Add(1)
	s.calls.objects.Add(uint64(len(items)))
	objErrs, err := s.path().batch(ctx, items)
	if err != nil {
		s.calls.failed.Add(1)
		for _, it := range items {
			it.done <- err
		}
		return
	}
	for i, err := range s.confirm(ctx, items, objErrs) {
		items[i].done <- err
	}
}
