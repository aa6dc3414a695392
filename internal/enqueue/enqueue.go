// Package enqueue is `worker enqueue`: chat events as JSON lines in, each
// validated with event.Decode (the worker's own decoder), the valid ones sent
// with SendMessageBatch, ten per call, several calls at once.
//
// Order: every chat goes through one lane of Config.Concurrency, chosen by a
// hash of its chat_id; a lane gathers its lines into batches (internal/
// batcher) and sends one batch at a time, in input order. So a chat's events
// reach a FIFO queue in the order they were written (MessageGroupId =
// chat_id, MessageDeduplicationId = event_id), two batches holding the same
// chat are never in flight at once, and at most Concurrency calls are.
// (Should SQS fail part of a batch on its side, the entries it failed are
// sent again by internal/sqsbatch, after the others of that batch.)
//
// Lines that are not valid events are rejected with their line number and
// reason: at most Config.MaxShown are shown, then how many more there were.
// An event_id seen earlier in the input is rejected too, naming the line
// where it was first: SQS would drop the repeat on a FIFO queue (the event_id
// is the deduplication id) and the worker treats it as the same event
// anyway. Keeping the event_ids seen costs about 100 bytes per line.
//
// Input that is not text at all (a NUL byte in what the first read brings,
// as in any binary file) is refused before anything is sent, with an
// *InputError. Blank lines are skipped.
package enqueue

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/internal/batcher"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// Limits of one SendMessageBatch call.
const (
	MaxBatchEntries = sqsbatch.MaxEntries
	MaxBatchBytes   = sqsbatch.MaxBytes
	MaxLineBytes    = MaxBatchBytes
)

// Defaults of Config.
const (
	// DefaultConcurrency is the number of lanes, and so of SendMessageBatch
	// calls in flight: 8 calls of ten at SQS's usual 20-30 ms are about
	// 3,000 events/s, what a FIFO queue takes without high throughput mode.
	DefaultConcurrency = 8
	// DefaultProgressEvery is how often progress is shown.
	DefaultProgressEvery = time.Second
	// DefaultMaxShown is how many rejected lines are shown.
	DefaultMaxShown = 100
)

const (
	// linger is how long a lane's batch waits for more lines after its
	// first, while lines are arriving: input read from a file fills
	// batches of ten well within it, and a line typed or piped in slowly
	// goes out at once (internal/batcher lingers only under load).
	linger = 10 * time.Millisecond
	// laneBuffer is how many lines a lane takes while its batch is full
	// and its call in flight, so one busy chat does not stall the others.
	laneBuffer = 64
	// drainTimeout bounds sending what was read once the input is stopped.
	drainTimeout = 30 * time.Second
)

// API is the SQS call enqueue makes.
type API interface{ sqsbatch.SendAPI }

// Config configures a Sender. Zero fields take their defaults.
type Config struct {
	// Concurrency is the number of lanes: at most this many
	// SendMessageBatch calls are in flight. Default DefaultConcurrency.
	Concurrency int
	// Rejects gets one line per rejected input line, at most MaxShown, and
	// then how many more were rejected. Nil discards them.
	Rejects io.Writer
	// MaxShown bounds the rejected lines shown. Default DefaultMaxShown.
	MaxShown int
	// Progress gets a progress line (sent, rejected, rate) every
	// ProgressEvery while sending; nil shows none.
	Progress io.Writer
	// Terminal says Progress is a terminal: the progress line is rewritten
	// in place (a carriage return) and cleared at the end.
	Terminal bool
	// ProgressEvery is how often progress is shown. Default
	// DefaultProgressEvery.
	ProgressEvery time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MaxShown = cmp.Or(c.MaxShown, DefaultMaxShown)
	c.ProgressEvery = cmp.Or(c.ProgressEvery, DefaultProgressEvery)
	if c.Rejects == nil {
		c.Rejects = io.Discard
	}
	return c
}

// Report counts what happened to the input.
type Report struct {
	Sent     int
	Rejected int
	// Unsent counts valid lines read but not sent because sending stopped.
	Unsent int
}

// InputError says the input is not JSON lines at all; nothing was sent.
type InputError struct {
	Reason string
	Err    error // the read error, if one
}

func (e *InputError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return e.Reason
}

// Unwrap returns the read error.
func (e *InputError) Unwrap() error { return e.Err }

// Sender sends the lines of one input to one queue.
type Sender struct {
	queue *sqsbatch.Sender
	fifo  bool
	cfg   Config
}

// NewSender returns a Sender to queueURL; fifo says it is a FIFO queue.
func NewSender(api API, queueURL string, fifo bool, cfg Config) *Sender {
	return &Sender{queue: sqsbatch.NewSender(api, queueURL, sqsbatch.Config{}), fifo: fifo, cfg: cfg.WithDefaults()}
}

type entry struct {
	line          int
	body          string
	chat, eventID string
}

// run is one Send: what the lanes and the reader share.
type run struct {
	s     *Sender
	out   *console
	start time.Time

	sent, rejected, unsent atomic.Int64
	stopOnce               sync.Once
	stopped                atomic.Bool
	stopErr                error // set once, before stopped
}

func (r *run) report() Report {
	return Report{Sent: int(r.sent.Load()), Rejected: int(r.rejected.Load()), Unsent: int(r.unsent.Load())}
}

// stop ends sending with err; the first error wins.
func (r *run) stop(err error) {
	r.stopOnce.Do(func() {
		r.stopErr = err
		r.stopped.Store(true)
	})
}

// Send reads JSON lines from in until EOF and sends the valid ones. An
// *InputError means in is not JSON lines and nothing was sent; another
// error means sending stopped (SQS unreachable, ctx cancelled), and the
// report counts what was sent before.
func (s *Sender) Send(ctx context.Context, in io.Reader) (Report, error) {
	r := NewInput(in)
	if err := Check(r); err != nil {
		return Report{}, err
	}
	rn := &run{s: s, start: time.Now(), out: &console{cfg: s.cfg}}
	stopProgress := rn.showProgress()

	lanes := make([]*batcher.Batcher[entry], s.cfg.Concurrency)
	for i := range lanes {
		b, err := batcher.New(batcher.Config{MaxItems: MaxBatchEntries, MaxBytes: MaxBatchBytes, Linger: linger, Buffer: laneBuffer},
			func(e entry) int { return len(e.body) }, rn.flush)
		if err != nil {
			panic(err) // the configuration above is valid
		}
		lanes[i] = b
	}
	readErr := rn.read(ctx, r, lanes)

	// Send what was read, even after ctx ended: a batch cut off mid-call
	// may or may not have reached SQS, and the counts would not say.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	for _, b := range lanes {
		if err := b.Close(drain); err != nil {
			rn.stop(fmt.Errorf("send what was read: %w", err))
		}
	}
	stopProgress()
	rn.out.hidden(int(rn.rejected.Load()))
	if readErr != nil {
		rn.stop(readErr)
	}
	if rn.stopped.Load() {
		return rn.report(), rn.stopErr
	}
	return rn.report(), nil
}

// NewInput buffers in for Check and Send: Send reads a reader NewInput
// made without buffering it again, so what Check read is not lost.
func NewInput(in io.Reader) *bufio.Reader { return bufio.NewReaderSize(in, inputBuffer) }

const inputBuffer = 64 * 1024

// Check refuses input whose first read holds a NUL byte (no JSON text has
// one, every binary file does) with an *InputError, consuming nothing: a
// command can check its input before it connects to SQS.
func Check(r *bufio.Reader) error {
	if _, err := r.Peek(1); err != nil && !errors.Is(err, io.EOF) {
		return &InputError{Reason: "cannot read the input", Err: err}
	}
	head, _ := r.Peek(r.Buffered())
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return &InputError{Reason: fmt.Sprintf("not JSON lines: a NUL byte at offset %d (a binary file?); nothing was sent", i)}
	}
	return nil
}

// read reads lines until EOF, ctx's end or a stop, and hands each valid
// line to its chat's lane.
func (rn *run) read(ctx context.Context, r *bufio.Reader, lanes []*batcher.Batcher[entry]) error {
	first := map[string]int{} // event_id → the line it was first on
	for lineNo := 1; ; lineNo++ {
		if rn.stopped.Load() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before line %d: %w", lineNo, err)
		}
		raw, readErr := r.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return fmt.Errorf("read input at line %d: %w", lineNo, readErr)
		}
		line := bytes.TrimRight(raw, "\r\n")
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if e, ok := rn.accept(lineNo, line, first); ok {
				if err := lanes[lane(e.chat, len(lanes))].Add(ctx, e); err != nil {
					return fmt.Errorf("interrupted at line %d: %w", lineNo, err)
				}
			}
		}
		if readErr != nil { // io.EOF
			return nil
		}
	}
}

// lane is the lane of a chat.
func lane(chat string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(chat))
	return int(h.Sum32() % uint32(n))
}

// accept validates one line and returns what is sent for it. The body is
// the line with U+FFFE and U+FFFF written as JSON escapes
// (sqsbatch.JSONBody): valid UTF-8 text, so a valid event, but characters
// SQS refuses raw; escaped, the body decodes to the same event.
func (rn *run) accept(lineNo int, line []byte, first map[string]int) (entry, bool) {
	if len(line) <= MaxLineBytes {
		line = sqsbatch.JSONBody(line)
	}
	if len(line) > MaxLineBytes {
		rn.reject(lineNo, fmt.Sprintf("line is %d bytes, larger than SQS's %d-byte message limit", len(line), MaxLineBytes))
		return entry{}, false
	}
	ev, err := event.Decode(line)
	if err != nil {
		var inv *event.Invalid
		if errors.As(err, &inv) {
			rn.reject(lineNo, inv.Code+": "+inv.Error())
		} else {
			rn.reject(lineNo, err.Error())
		}
		return entry{}, false
	}
	if at, dup := first[ev.EventID]; dup {
		rn.reject(lineNo, fmt.Sprintf("duplicate_event_id: event_id %q is on line %d already", ev.EventID, at))
		return entry{}, false
	}
	first[ev.EventID] = lineNo
	return entry{line: lineNo, body: string(line), chat: ev.ChatID, eventID: ev.EventID}, true
}

func (rn *run) reject(lineNo int, reason string) {
	rn.rejected.Add(1)
	rn.out.reject(lineNo, reason)
}

// flush sends one lane's batch through the worker's batch mechanism
// (internal/sqsbatch: entries SQS failed on its side, or did not mention,
// are sent again). An entry SQS refused is a rejected line; a call that
// kept failing stops the sending, and no batch is sent after it.
func (rn *run) flush(ctx context.Context, batch []entry) {
	if rn.stopped.Load() {
		rn.unsent.Add(int64(len(batch)))
		return
	}
	msgs := make([]sqsbatch.Message, len(batch))
	for i, e := range batch {
		msgs[i].Body = e.body
		if rn.s.fifo {
			msgs[i].GroupID, msgs[i].DeduplicationID = e.chat, e.eventID
		}
	}
	var stop error
	for i, err := range rn.s.queue.Send(ctx, msgs) {
		var se *sqsbatch.Error
		switch {
		case err == nil:
			rn.sent.Add(1)
		case errors.As(err, &se) && se.Code != "":
			rn.reject(batch[i].line, fmt.Sprintf("SQS did not take the message: %s: %s", se.Code, se.Message))
		default:
			rn.unsent.Add(1)
			stop = err
		}
	}
	if stop != nil {
		rn.stop(fmt.Errorf("send lines %d-%d: %w", batch[0].line, batch[len(batch)-1].line, stop))
	}
}

// showProgress shows progress every ProgressEvery until the returned
// function is called.
func (rn *run) showProgress() func() {
	if rn.s.cfg.Progress == nil {
		return func() {}
	}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(rn.s.cfg.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				rep := rn.report()
				rn.out.progress(rep, float64(rep.Sent)/now.Sub(rn.start).Seconds())
			}
		}
	}()
	return func() {
		close(done)
		<-ended
		rn.out.endProgress()
	}
}

// console writes rejected lines and progress, which come from several
// goroutines, one whole line at a time.
type console struct {
	cfg    Config
	mu     sync.Mutex
	shown  int
	onLine bool // a terminal progress line is showing
}

func (c *console) reject(lineNo int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown >= c.cfg.MaxShown {
		return
	}
	c.shown++
	c.clearLine()
	fmt.Fprintf(c.cfg.Rejects, "line %d: %s\n", lineNo, reason)
}

// hidden says how many rejected lines were not shown.
func (c *console) hidden(rejected int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := rejected - c.shown; n > 0 {
		fmt.Fprintf(c.cfg.Rejects, "… and %d more rejected lines not shown (%d rejected in all)\n", n, rejected)
	}
}

func (c *console) progress(rep Report, rate float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf("sent %d, rejected %d, %.0f events/s", rep.Sent, rep.Rejected, rate)
	if c.cfg.Terminal {
		fmt.Fprintf(c.cfg.Progress, "\r%s\x1b[K", line)
		c.onLine = true
		return
	}
	fmt.Fprintf(c.cfg.Progress, "progress: %s\n", line)
}

func (c *console) endProgress() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLine()
}

// clearLine clears a terminal progress line before other output.
func (c *console) clearLine() {
	if c.onLine {
		fmt.Fprint(c.cfg.Progress, "\r\x1b[K")
		c.onLine = false
	}
}
