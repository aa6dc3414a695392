// Package forget is `worker forget`: it erases what the store holds of a
// chat (every message and its muted state: a "delete my data" request), or,
// as retention, the messages sent before a time (of every chat, or of one),
// and then counts what is left.
//
// It counts first (which a dry run stops at), then deletes with Weaviate's
// batch delete by filter (store.DeleteMessages, store.DeleteState: as many
// requests as needed, each at most Weaviate's QUERY_MAXIMUM_RESULTS
// objects), and counts again: Report.Left* are read from Weaviate after the
// delete.
//
// It is safe while workers run: each request deletes what matches at that
// moment. A worker that stores a message of the chat meanwhile (an event of
// the chat still in the queue) stores it again, and the count after finds
// it: forget says so and fails, and a later run removes it. Retention keeps
// every chat's muted state: a mute is not history, and the newest mute or
// unmute decides the state whatever its age.
package forget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatprep/chatprep/internal/store"
)

// Store is what forget needs of the Weaviate store (*store.Store).
type Store interface {
	CountMessages(ctx context.Context, sel store.Selection) (int64, error)
	DeleteMessages(ctx context.Context, sel store.Selection, progress func(deleted int64)) (int64, error)
	CountState(ctx context.Context, chatID string) (int64, error)
	DeleteState(ctx context.Context, chatID string) (int64, error)
}

var _ Store = (*store.Store)(nil)

// DefaultProgressEvery is the most often a progress line is written.
const DefaultProgressEvery = time.Second

// Options say what to forget.
type Options struct {
	// Chat, when set, is the chat whose messages go (with Before zero: and
	// its state).
	Chat string
	// Before, when set, is retention: only the messages sent before it go,
	// and no state.
	Before time.Time
	// DryRun counts what would go and deletes nothing.
	DryRun bool
	// Progress, when set, gets a progress line at most every
	// ProgressEvery while deleting (default DefaultProgressEvery).
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Selection is the messages the options take.
func (o Options) Selection() store.Selection {
	return store.Selection{ChatID: o.Chat, Before: o.Before}
}

// WholeChat tells whether the options erase a chat: its messages and its
// state.
func (o Options) WholeChat() bool { return o.Chat != "" && o.Before.IsZero() }

// Report says what a run found and did.
type Report struct {
	// Messages and State are what matched before the delete: what a dry
	// run would delete.
	Messages, State int64
	// DeletedMessages and DeletedState are what was deleted (0 in a dry
	// run).
	DeletedMessages, DeletedState int64
	// LeftMessages and LeftState are counted after the delete: what of the
	// selection Weaviate still holds (stored meanwhile, or not deleted).
	LeftMessages, LeftState int64
	Elapsed                 time.Duration
}

// Left is everything of the selection still there after the delete.
func (r Report) Left() int64 { return r.LeftMessages + r.LeftState }

// ErrNothingSelected refuses options that select no chat and no time: forget
// never erases every message.
var ErrNothingSelected = errors.New("forget: name a chat (--chat), an age (--older-than), or both")

// Run counts, deletes (unless DryRun) and counts again.
func Run(ctx context.Context, st Store, o Options) (Report, error) {
	start := time.Now()
	var rep Report
	if o.Chat == "" && o.Before.IsZero() {
		return rep, ErrNothingSelected
	}
	o.ProgressEvery = cmp.Or(o.ProgressEvery, DefaultProgressEvery)
	sel := o.Selection()
	var err error
	if rep.Messages, err = st.CountMessages(ctx, sel); err != nil {
		return rep, err
	}
	if o.WholeChat() {
		if rep.State, err = st.CountState(ctx, o.Chat); err != nil {
			return rep, err
		}
	}
	if o.DryRun {
		rep.LeftMessages, rep.LeftState = rep.Messages, rep.State
		rep.Elapsed = time.Since(start)
		return rep, nil
	}
	p := &progress{o: o, total: rep.Messages, start: time.Now(), last: time.Now()}
	rep.DeletedMessages, err = st.DeleteMessages(ctx, sel, p.deleted)
	p.done(rep.DeletedMessages)
	if err != nil {
		return rep, err
	}
	if o.WholeChat() {
		if rep.DeletedState, err = st.DeleteState(ctx, o.Chat); err != nil {
			return rep, err
		}
	}
	// What is left, read from Weaviate after the delete.
	if rep.LeftMessages, err = st.CountMessages(ctx, sel); err != nil {
		return rep, fmt.Errorf("count what is left: %w", err)
	}
	if o.WholeChat() {
		if rep.LeftState, err = st.CountState(ctx, o.Chat); err != nil {
			return rep, fmt.Errorf("count what is left: %w", err)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// progress writes the deletes' progress at most every ProgressEvery.
type progress struct {
	o     Options
	total int64
	start time.Time

	mu    sync.Mutex
	last  time.Time
	shown bool
}

func (p *progress) deleted(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Progress == nil || time.Since(p.last) < p.o.ProgressEvery {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(p.o.Progress, "progress: deleted %d of %d messages, %.0f messages/s\n", n, p.total, float64(n)/time.Since(p.start).Seconds())
}

// done writes the last line, if any progress was shown.
func (p *progress) done(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Progress == nil || !p.shown {
		return
	}
	fmt.Fprintf(p.o.Progress, "done: deleted %d of %d messages, %.0f messages/s\n", n, p.total, float64(n)/time.Since(p.start).Seconds())
}

// ParseAge reads the age of --older-than: a Go duration (2160h) or whole
// days (90d), above zero.
func ParseAge(s string) (time.Duration, error) {
	bad := errors.New("want a duration such as 2160h or a number of days such as 90d")
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 {
		return 0, errors.New("want an age above zero")
	}
	return d, nil
}
