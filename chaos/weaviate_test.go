package chaos_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/chatprep/chatprep/internal/store/storetest"
)

// storedAs tells whether the message object of (chat, event) exists and
// holds that chat and event.
func storedAs(ctx context.Context, w storetest.Reader, chat, eventID string) (bool, error) {
	props, err := w.Get(ctx, chat, eventID)
	if err != nil || props == nil {
		return false, err
	}
	if props["chat_id"] != chat || props["event_id"] != eventID {
		return false, fmt.Errorf("object of %s holds chat %v event %v", eventID, props["chat_id"], props["event_id"])
	}
	return true, nil
}

// missing returns the events of l that are not stored in w (read straight
// from the server, not through the scenario's proxies), and the chats whose
// object count is not their number of events ("no extra objects").
func missing(ctx context.Context, w storetest.Reader, l *load) (notStored []string, badChats []string, err error) {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		work = make(chan *ev)
	)
	for range 8 {
		wg.Go(func() {
			for e := range work {
				ok, err := storedAs(ctx, w, e.chat, e.id)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if !ok {
					notStored = append(notStored, e.id)
				}
				mu.Unlock()
			}
		})
	}
	perChat := map[string]int{}
	for _, e := range l.events {
		if e.kind == userMsg || e.kind == assistantMsg {
			perChat[e.chat]++
			work <- e
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return nil, nil, errs[0]
	}
	for _, chat := range l.chats {
		n, err := w.Count(ctx, chat)
		if err != nil {
			return nil, nil, err
		}
		if n != perChat[chat] {
			badChats = append(badChats, fmt.Sprintf("%s holds %d objects, want %d", chat, n, perChat[chat]))
		}
	}
	return notStored, badChats, nil
}
