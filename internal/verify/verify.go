// Package verify is `worker verify`: it checks that every stored message is
// found by the searches the worker uses, says what is missing, and can
// repair it.
//
// The ground truth is Weaviate's object store, read in id order with its
// cursor (store.ScanMessages): every message object as it is, whatever the
// inverted indexes hold. Each chat's messages are then asked of the chat_id
// and role filter that the history searches use and of the BM25 search that
// relevance uses (store.Unfindable). A message one of them misses is
// asked again after Recheck (a worker may have been writing it: Weaviate
// writes the object before its index entries), and only what is still
// missing is reported, one JSON line each. With Repair, each is reindexed
// (store.Reindex) and asked again.
//
// It is safe while workers run: it reads, and a repair replaces an object
// with itself (see store.Reindex). A chat erased while a repair of one of its
// messages runs could get that message back: do not run `worker forget` and
// `worker verify --repair` on the same chat at once.
package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/chatprep/chatprep/internal/store"
)

// Store is what verify needs of the Weaviate store (*store.Store).
type Store interface {
	ScanMessages(ctx context.Context, after string, limit int) ([]store.StoredMessage, error)
	Unfindable(ctx context.Context, chatID string, msgs []store.StoredMessage) (map[string][]string, error)
	Reindex(ctx context.Context, chatID, id string) error
}

var _ Store = (*store.Store)(nil)

// Defaults of Options.
const (
	// DefaultPage is how many objects one scan request reads.
	DefaultPage = 500
	// DefaultWindow is how many scanned objects are checked together,
	// grouped by chat: it bounds memory, not correctness.
	DefaultWindow = 20000
	// DefaultRecheck is how long a message a search missed is given before
	// it is asked again.
	DefaultRecheck = 2 * time.Second
	// DefaultProgressEvery is the most often a progress line is written.
	DefaultProgressEvery = time.Second
)

// Options configure Run.
type Options struct {
	// Chat, when set, checks only that chat's messages (the whole
	// collection is still scanned: only the object store is the truth).
	Chat string
	// Repair reindexes each missing message and asks the searches again.
	Repair bool
	// Out gets one JSON line per missing message (Finding).
	Out io.Writer
	// Progress, when set, gets a progress line at most every
	// ProgressEvery.
	Progress io.Writer
	// Page, Window, Recheck, ProgressEvery: defaults DefaultPage,
	// DefaultWindow, DefaultRecheck, DefaultProgressEvery.
	Page, Window  int
	Recheck       time.Duration
	ProgressEvery time.Duration
}

// Finding is a stored message that a search of the worker misses.
type Finding struct {
	ChatID  string   `json:"chat_id"`
	EventID string   `json:"event_id"`
	Role    string   `json:"role"`
	ID      string   `json:"id"`
	Missing []string `json:"missing"` // store.SearchHistory, store.SearchRelevance
	// Repaired is set with Options.Repair: whether the searches find it
	// after its reindex.
	Repaired *bool `json:"repaired,omitempty"`
	// Error says why a repair failed.
	Error string `json:"error,omitempty"`
}

// Report counts what Run did.
type Report struct {
	Scanned  int // message objects read
	Checked  int // of them, checked (all, or the chat's)
	Chats    int // chats checked
	Missing  int // messages a search missed
	Repaired int // of them, found by every search after their reindex
}

// Run checks the messages, writes a Finding per missing message to o.Out,
// and returns what it counted. Its error is a failure to read or ask
// Weaviate (the report then counts what was done before it).
func Run(ctx context.Context, st Store, o Options) (Report, error) {
	o.Page = cmp.Or(o.Page, DefaultPage)
	o.Window = cmp.Or(o.Window, DefaultWindow)
	if o.Recheck == 0 {
		o.Recheck = DefaultRecheck
	}
	o.ProgressEvery = cmp.Or(o.ProgressEvery, DefaultProgressEvery)
	r := &runner{st: st, o: o, chats: map[string]bool{}, lastProgress: time.Now()}
	err := r.run(ctx)
	r.progress(true)
	return r.rep, err
}

type runner struct {
	st           Store
	o            Options
	rep          Report
	chats        map[string]bool
	lastProgress time.Time
}

func (r *runner) run(ctx context.Context) error {
	var window []store.StoredMessage
	after := ""
	for {
		page, err := r.st.ScanMessages(ctx, after, r.o.Page)
		if err != nil {
			return err
		}
		r.rep.Scanned += len(page)
		for _, m := range page {
			if r.o.Chat == "" || m.ChatID == r.o.Chat {
				window = append(window, m)
			}
		}
		if len(page) == 0 || len(window) >= r.o.Window {
			if err := r.checkWindow(ctx, window); err != nil {
				return err
			}
			window = window[:0]
		}
		r.progress(false)
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Cursor
	}
}

// checkWindow checks msgs chat by chat, rechecks what was missed, repairs.
func (r *runner) checkWindow(ctx context.Context, msgs []store.StoredMessage) error {
	byChat := map[string][]store.StoredMessage{}
	for _, m := range msgs {
		byChat[m.ChatID] = append(byChat[m.ChatID], m)
	}
	chats := make([]string, 0, len(byChat))
	for c := range byChat {
		chats = append(chats, c)
	}
	slices.Sort(chats)
	suspects := map[string][]store.StoredMessage{} // chat → messages missed once
	for _, chat := range chats {
		ms := byChat[chat]
		missing, err := r.st.Unfindable(ctx, chat, ms)
		if err != nil {
			return err
		}
		r.chats[chat] = true
		r.rep.Chats = len(r.chats)
		r.rep.Checked += len(ms)
		for _, m := range ms {
			if len(missing[m.ID]) > 0 {
				suspects[chat] = append(suspects[chat], m)
			}
		}
		r.progress(false)
	}
	if len(suspects) == 0 {
		return nil
	}
	// A worker may have been writing them: give it time, ask again.
	t := time.NewTimer(r.o.Recheck)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	for _, chat := range slices.Sorted(maps.Keys(suspects)) {
		ms := suspects[chat]
		missing, err := r.st.Unfindable(ctx, chat, ms)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if len(missing[m.ID]) == 0 {
				continue
			}
			r.rep.Missing++
			f := Finding{ChatID: m.ChatID, EventID: m.EventID, Role: string(m.Role), ID: m.ID, Missing: missing[m.ID]}
			if r.o.Repair {
				ok, err := r.repair(ctx, m)
				if err != nil && ctx.Err() != nil {
					return err
				}
				f.Repaired = &ok
				if err != nil {
					f.Error = err.Error()
				}
				if ok {
					r.rep.Repaired++
				}
			}
			if err := json.NewEncoder(r.o.Out).Encode(f); err != nil {
				return fmt.Errorf("write finding: %w", err)
			}
		}
	}
	return nil
}

// repair reindexes m and tells whether every search finds it then.
func (r *runner) repair(ctx context.Context, m store.StoredMessage) (bool, error) {
	if err := r.st.Reindex(ctx, m.ChatID, m.ID); err != nil {
		return false, err // store.ErrGone: erased meanwhile, nothing to find
	}
	missing, err := r.st.Unfindable(ctx, m.ChatID, []store.StoredMessage{m})
	if err != nil {
		return false, err
	}
	if len(missing[m.ID]) > 0 {
		return false, fmt.Errorf("still missed by %v after the reindex", missing[m.ID])
	}
	return true, nil
}

// progress writes a line at most every ProgressEvery, and always when last.
func (r *runner) progress(last bool) {
	if r.o.Progress == nil || (!last && time.Since(r.lastProgress) < r.o.ProgressEvery) {
		return
	}
	r.lastProgress = time.Now()
	prefix := "progress"
	if last {
		prefix = "done"
	}
	fmt.Fprintf(r.o.Progress, "%s: scanned %d objects, checked %d messages in %d chats, missing %d, repaired %d\n",
		prefix, r.rep.Scanned, r.rep.Checked, r.rep.Chats, r.rep.Missing, r.rep.Repaired)
}
