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
// The input is read by internal/eventfile, as `worker import` reads it:
// lines that are not valid events are rejected with their line number and
// reason, at most Config.MaxShown shown, then how many more there were. An
// event_id seen earlier in the input is rejected too, naming the line where
// it was first: SQS would drop the repeat on a FIFO queue (the event_id is
// the deduplication id) and the worker treats it as the same event anyway.
// Keeping the event_ids seen costs about 100 bytes per line. Input that is
// not text at all (a NUL byte in what the first read brings, as in any
// binary file) is refused before anything is sent, with an *InputError.
package enqueue

import (
	"bufio"
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
	"github.com/chatprep/chatprep/internal/eventfile"
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
	DefaultProgressEvery = eventfile.DefaultProgressEvery
	// DefaultMaxShown is how many rejected lines are shown.
	DefaultMaxShown = eventfile.DefaultMaxShown
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
	// Output is where rejected lines and progress (sent, rejected, rate)
	// go.
	eventfile.Output
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.Output = c.Output.WithDefaults()
	return c
}

// Report counts what happened to the input.
type Report struct {
	Sent     int
	Rejected int
	// Unsent counts valid lines read but not sent because sending stopped.
	Unsent int
}

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
	lines *eventfile.Reader
	start time.Time

	sent, unsent atomic.Int64
	stopOnce     sync.Once
	stopped      atomic.Bool
	stopErr      error // set once, before stopped
}

func (r *run) report() Report {
	return Report{Sent: int(r.sent.Load()), Rejected: r.lines.Rejected(), Unsent: int(r.unsent.Load())}
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
	input := eventfile.NewInput(in) // in itself, when NewInput made it
	rn := &run{s: s, start: time.Now()}
	rn.lines = eventfile.NewReader(input, eventfile.Config{Output: s.cfg.Output, Prepare: sqsBody})
	if err := eventfile.Check(input); err != nil {
		return Report{}, err
	}
	stopProgress := rn.lines.ShowProgress(func() string {
		rep := rn.report()
		return fmt.Sprintf("sent %d, rejected %d, %.0f events/s", rep.Sent, rep.Rejected, float64(rep.Sent)/time.Since(rn.start).Seconds())
	})

	lanes := make([]*batcher.Batcher[entry], s.cfg.Concurrency)
	for i := range lanes {
		b, err := batcher.New(batcher.Config{MaxItems: MaxBatchEntries, MaxBytes: MaxBatchBytes, Linger: linger, Buffer: laneBuffer},
			func(e entry) int { return len(e.body) }, rn.flush)
		if err != nil {
			panic(err) // the configuration above is valid
		}
		lanes[i] = b
	}
	readErr := rn.lines.Read(ctx, func(l eventfile.Line) error {
		if rn.stopped.Load() {
			return errStopped
		}
		e := entry{line: l.No, body: string(l.Body), chat: l.Event.ChatID, eventID: l.Event.EventID}
		if err := lanes[lane(e.chat, len(lanes))].Add(ctx, e); err != nil {
			return fmt.Errorf("interrupted at line %d: %w", l.No, err)
		}
		return nil
	})
	if errors.Is(readErr, errStopped) {
		readErr = nil
	}

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
	rn.lines.Close()
	if readErr != nil {
		rn.stop(readErr)
	}
	if rn.stopped.Load() {
		return rn.report(), rn.stopErr
	}
	return rn.report(), nil
}

// errStopped ends reading once sending stopped.
var errStopped = errors.New("sending stopped")

// NewInput buffers in for Check and Send: Send reads a reader NewInput
// made without buffering it again, so what Check read is not lost.
func NewInput(in io.Reader) *bufio.Reader { return eventfile.NewInput(in) }

// Check refuses input whose first read holds a NUL byte (no JSON text has
// one, every binary file does) with an *InputError, consuming nothing: a
// command can check its input before it connects to SQS.
func Check(r *bufio.Reader) error { return eventfile.Check(r) }

// InputError says the input is not JSON lines at all; nothing was sent.
type InputError = eventfile.InputError

// lane is the lane of a chat.
func lane(chat string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(chat))
	return int(h.Sum32() % uint32(n))
}

// sqsBody is what is sent for a line: the line with U+FFFE and U+FFFF
// written as JSON escapes (sqsbatch.JSONBody), valid UTF-8 text, so a valid
// event, but characters SQS refuses raw; escaped, the body decodes to the
// same event. A line too large for SQS is rejected.
func sqsBody(line []byte) ([]byte, string) {
	if len(line) <= MaxLineBytes {
		line = sqsbatch.JSONBody(line)
	}
	if len(line) > MaxLineBytes {
		return nil, fmt.Sprintf("line is %d bytes, larger than SQS's %d-byte message limit", len(line), MaxLineBytes)
	}
	return line, ""
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
			rn.lines.Reject(batch[i].line, fmt.Sprintf("SQS did not take the message: %s: %s", se.Code, se.Message))
		default:
			rn.unsent.Add(1)
			stop = err
		}
	}
	if stop != nil {
		rn.stop(fmt.Errorf("send lines %d-%d: %w", batch[0].line, batch[len(batch)-1].line, stop))
	}
}
