// Package importer is `worker import`: past chat messages, as JSON lines in
// the chat event format, written straight into Weaviate in large batches,
// without preprocessing and without results.
//
// Each line is read and validated as `worker enqueue` reads it
// (internal/eventfile: the same messages, the same cap on the rejected
// lines shown), and must be a message (type message, either role): mutes
// and unmutes are state, for `worker enqueue`. A line whose chat and
// event ids came earlier in the input is rejected (duplicate_event_id);
// the same event_id in two chats is two messages, as the worker stores
// them.
//
// Writes go through the store's own write path (store.PutMessages): the
// object id is the one the worker gives the event (store.MessageID), so a
// message imported and later received is one object, and the properties
// are the ones the worker derives, so history and relevance find imported
// messages as they find received ones. Batches of Config.BatchSize lines
// (at most Config.MaxBatchBytes) go Config.Concurrency at a time.
//
// Idempotent and resumable: importing a line again replaces its object
// with the same one, so running an import again is always safe. To spare a
// long import the lines already done, the progress line and the line an
// interrupted or failed import ends with say up to which line everything
// is done (imported or rejected): Config.Skip (--skip N) passes over that
// many lines. Lines after it may be done too; importing them again costs
// only time.
//
// A write that fails for Weaviate's sake (unreachable, overloaded, not
// confirmed) is tried again with the back-off policy for up to
// Config.RetryFor; then the import stops. An object Weaviate refuses is a
// rejected line.
package importer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/batcher"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/eventfile"
)

// Defaults of Config, chosen by measurement (`make bench-scale` prints the
// import rate; see the README's Performance section).
const (
	// DefaultBatchSize is how many messages one batch request writes.
	DefaultBatchSize = 500
	// DefaultMaxBatchBytes bounds a batch by the size of its lines (the
	// object sent is about twice the line: the text and its terms).
	DefaultMaxBatchBytes = 8 << 20
	// DefaultConcurrency is how many batch requests are in flight.
	DefaultConcurrency = 4
	// DefaultRetryFor is how long a batch that fails for Weaviate's sake
	// is tried again before the import stops.
	DefaultRetryFor = 2 * time.Minute
)

const (
	// linger is how long a batch waits for more lines: a file fills a
	// batch at once; lines piped in slowly still go.
	linger = 50 * time.Millisecond
	// drainTimeout bounds the batches in flight once reading stopped.
	drainTimeout = time.Minute
)

// retryPolicy is the wait between two tries of a failed batch.
var retryPolicy = backoff.Policy{Base: 250 * time.Millisecond, Max: 10 * time.Second}

// Store is what the import needs of the Weaviate store (*store.Store).
type Store interface {
	// PutMessages writes the events in one batch request: each one's
	// result, nil when stored.
	PutMessages(ctx context.Context, evs []event.Event) []error
}

// Config configures Run. Zero fields take their defaults.
type Config struct {
	// BatchSize, MaxBatchBytes, Concurrency, RetryFor: defaults
	// DefaultBatchSize, DefaultMaxBatchBytes, DefaultConcurrency,
	// DefaultRetryFor.
	BatchSize     int
	MaxBatchBytes int
	Concurrency   int
	RetryFor      time.Duration
	// Skip passes over the first Skip lines (a resumed import).
	Skip int
	// Output is where rejected lines and progress go.
	eventfile.Output
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.MaxBatchBytes = cmp.Or(c.MaxBatchBytes, DefaultMaxBatchBytes)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.RetryFor = cmp.Or(c.RetryFor, DefaultRetryFor)
	return c
}

// Report counts what an import did.
type Report struct {
	Imported int // messages written (and confirmed)
	Rejected int // lines rejected: invalid, not a message, a repeat, refused by Weaviate
	Lines    int // lines read, the skipped ones included
	// Done is the line up to which every line is imported or rejected:
	// Config.Skip = Done resumes the import without redoing them.
	Done    int
	Elapsed time.Duration
}

// Rate is the messages imported per second.
func (r Report) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Imported) / r.Elapsed.Seconds()
}

// Run imports the lines of in into st. An *eventfile.InputError means in
// is not JSON lines and nothing was imported; another error means the
// import stopped (ctx ended, Weaviate failed for longer than RetryFor), and
// the report says up to which line it is done.
func Run(ctx context.Context, st Store, in io.Reader, cfg Config) (Report, error) {
	cfg = cfg.WithDefaults()
	input := eventfile.NewInput(in)
	if err := eventfile.Check(input); err != nil {
		return Report{}, err
	}
	r := &run{st: st, cfg: cfg, start: time.Now(), pending: map[int]struct{}{}}
	r.lines = eventfile.NewReader(input, eventfile.Config{Output: cfg.Output, Refuse: messagesOnly, Same: sameMessage, Skip: cfg.Skip})
	b, err := batcher.New(batcher.Config{
		MaxItems: cfg.BatchSize, MaxBytes: cfg.MaxBatchBytes, Linger: linger,
		Concurrency: cfg.Concurrency, Buffer: cfg.BatchSize,
	}, func(l eventfile.Line) int { return len(l.Body) }, r.flush)
	if err != nil {
		return Report{}, fmt.Errorf("import: %w", err)
	}
	stopProgress := r.lines.ShowProgress(r.progress)
	readErr := r.lines.Read(ctx, func(l eventfile.Line) error {
		if err := r.stopErr(); err != nil {
			return err
		}
		r.mu.Lock()
		r.pending[l.No] = struct{}{}
		r.mu.Unlock()
		if err := b.Add(ctx, l); err != nil {
			r.settle(l.No)
			return fmt.Errorf("interrupted at line %d: %w", l.No, err)
		}
		return nil
	})
	// The batches already formed are written, even after ctx ended: the
	// lines they hold are then done.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := b.Close(drain); err != nil {
		r.stop(fmt.Errorf("write the batches in flight: %w", err))
	}
	stopProgress()
	r.lines.Close()
	rep := r.report()
	if err := r.stopErr(); err != nil {
		return rep, err
	}
	if readErr != nil {
		return rep, readErr
	}
	return rep, nil
}

// messagesOnly refuses mutes and unmutes: they are state, not history.
func messagesOnly(ev event.Event) string {
	if ev.Type != event.TypeMessage {
		return fmt.Sprintf("invalid_field: type: %q: import takes messages only (send mute and unmute with worker enqueue)", ev.Type)
	}
	return ""
}

// sameMessage is what makes two lines one message: the chat and the event
// (the object id the worker gives it), as a 16-byte digest, so the ids seen
// cost about 60 bytes a line.
func sameMessage(ev event.Event) (string, string) {
	sum := sha256.Sum256([]byte(ev.ChatID + "\x00" + ev.EventID))
	return string(sum[:16]), fmt.Sprintf("event_id %q of chat %q", ev.EventID, ev.ChatID)
}

// run is one import.
type run struct {
	st    Store
	cfg   Config
	lines *eventfile.Reader
	start time.Time

	imported atomic.Int64

	mu      sync.Mutex
	pending map[int]struct{} // lines handed to a batch, not yet imported or rejected
	err     error            // why the import stopped; nil while it runs
}

func (r *run) stop(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *run) stopErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *run) settle(lines ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, no := range lines {
		delete(r.pending, no)
	}
}

// done is the line up to which every line is imported or rejected.
func (r *run) done() int {
	read := r.lines.Lines() // first: a line read was pending before it counted
	r.mu.Lock()
	defer r.mu.Unlock()
	for no := range r.pending {
		read = min(read, no-1)
	}
	return read
}

func (r *run) report() Report {
	return Report{
		Imported: int(r.imported.Load()), Rejected: r.lines.Rejected(),
		Lines: r.lines.Lines(), Done: r.done(), Elapsed: time.Since(r.start),
	}
}

func (r *run) progress() string {
	rep := r.report()
	done := "no line done yet"
	if rep.Done > 0 {
		done = fmt.Sprintf("lines 1-%d done (--skip %d resumes)", rep.Done, rep.Done)
	}
	return fmt.Sprintf("imported %d, rejected %d, %.0f messages/s; %s", rep.Imported, rep.Rejected, rep.Rate(), done)
}

// flush writes one batch, trying again what failed for Weaviate's sake
// until RetryFor has passed; then the import stops, and the batch's lines
// left are not done.
func (r *run) flush(ctx context.Context, batch []eventfile.Line) {
	if r.stopErr() != nil {
		return
	}
	deadline := time.Now().Add(r.cfg.RetryFor)
	for attempt := 0; len(batch) > 0; attempt++ {
		evs := make([]event.Event, len(batch))
		for i, l := range batch {
			evs[i] = l.Event
		}
		var again []eventfile.Line
		var last error
		for i, err := range r.st.PutMessages(ctx, evs) {
			switch {
			case err == nil:
				r.imported.Add(1)
				r.settle(batch[i].No)
			case retryable(err):
				again, last = append(again, batch[i]), err
			default:
				r.lines.Reject(batch[i].No, "weaviate refused it: "+err.Error())
				r.settle(batch[i].No)
			}
		}
		batch = again
		if len(batch) == 0 {
			return
		}
		wait := retryPolicy.Delay(attempt)
		if time.Now().Add(wait).After(deadline) || !backoff.Sleep(ctx, wait) || r.stopErr() != nil {
			r.stop(fmt.Errorf("lines %d-%d: %w", batch[0].No, batch[len(batch)-1].No, last))
			return
		}
	}
}

// retryable tells whether a write may succeed when tried again: a failure
// that is not the object's own (store.Error's Transient).
func retryable(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}
