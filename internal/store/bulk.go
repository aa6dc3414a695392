package store

import (
	"context"
	"fmt"

	"github.com/chatprep/chatprep/internal/event"
)

// PutMessages stores message events in one batch request, each exactly as
// Put stores it: the same object (messageObject: the same id, MessageID of
// its chat and event, so a message stored here and later received by a
// worker is one object, and the same derived properties, so every search
// finds it), in its chat's tenant (one request holds objects of many
// tenants, each naming its own), the same write path and the same
// confirmation rule (sendBatch).
// It returns each event's result, in order: nil when Weaviate confirmed it.
//
// It is for bulk loads (`worker import`): the caller sizes the batches and
// runs several at once. Put's batcher, sized for a worker's many small
// concurrent writes, is not involved.
func (s *Store) PutMessages(ctx context.Context, evs []event.Event) []error {
	errs := make([]error, len(evs))
	wrap := func(i int, err error) {
		if err != nil {
			errs[i] = fmt.Errorf("store message %s of chat %s: %w", evs[i].EventID, evs[i].ChatID, err)
		}
	}
	items := make([]*batchItem, 0, len(evs))
	at := make([]int, 0, len(evs)) // items[j] is evs[at[j]]
	for i, ev := range evs {
		if s.closed.Load() {
			wrap(i, s.closedError())
			continue
		}
		if err := checkMessage(ev); err != nil {
			wrap(i, err)
			continue
		}
		obj, err := s.messageObject(ctx, ev)
		if err != nil {
			wrap(i, err)
			continue
		}
		items = append(items, &batchItem{obj: obj, ctx: ctx, done: make(chan error, 1)})
		at = append(at, i)
	}
	if len(items) == 0 {
		return errs
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	s.sendBatch(ctx, items) // one result per item, on its done
	for j, it := range items {
		wrap(at[j], <-it.done)
	}
	return errs
}
