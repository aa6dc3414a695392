// Package eventfile reads chat events from JSON lines, a file or stdin, the
// way `worker enqueue` and `worker import` take them: input that is not
// text at all refused before anything is done, each line validated with
// event.Decode (the worker's own decoder), a repeated event rejected
// naming the line it was first on, every rejected line reported with its
// number and reason (at most Config.MaxShown, then how many more), and a
// progress line at most every Config.ProgressEvery.
//
// Input that is not text at all (a NUL byte in what the first read brings,
// as in any binary file) is refused with an *InputError. Blank lines are
// skipped; a UTF-8 byte order mark on the first line and the \r of CRLF
// line ends are dropped.
package eventfile

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// Defaults of Config.
const (
	// DefaultProgressEvery is how often progress is shown.
	DefaultProgressEvery = time.Second
	// DefaultMaxShown is how many rejected lines are shown.
	DefaultMaxShown = 100
)

// InputError says the input is not JSON lines at all; nothing was done.
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

// NewInput buffers in for Check and a Reader: a Reader reads a reader
// NewInput made without buffering it again, so what Check read is not
// lost.
func NewInput(in io.Reader) *bufio.Reader { return bufio.NewReaderSize(in, inputBuffer) }

const inputBuffer = 64 * 1024

// Check refuses input whose first read holds a NUL byte (no JSON text has
// one, every binary file does) with an *InputError, consuming nothing: a
// command can check its input before it connects to anything.
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

// Output says where a command that reads an input writes the rejected
// lines and its progress. Zero fields take their defaults.
type Output struct {
	// Rejects gets one line per rejected input line, at most MaxShown, and
	// at the end how many more were rejected. Nil discards them.
	Rejects io.Writer
	// MaxShown bounds the rejected lines shown. Default DefaultMaxShown.
	MaxShown int
	// Progress gets a progress line every ProgressEvery; nil shows none.
	Progress io.Writer
	// Terminal says Progress is a terminal: the progress line is rewritten
	// in place (a carriage return) and cleared at the end.
	Terminal bool
	// ProgressEvery is how often progress is shown. Default
	// DefaultProgressEvery.
	ProgressEvery time.Duration
}

// WithDefaults returns o with every zero field set to its default (nil
// Rejects: io.Discard).
func (o Output) WithDefaults() Output {
	o.MaxShown = cmp.Or(o.MaxShown, DefaultMaxShown)
	o.ProgressEvery = cmp.Or(o.ProgressEvery, DefaultProgressEvery)
	if o.Rejects == nil {
		o.Rejects = io.Discard
	}
	return o
}

// Config configures a Reader. Zero fields take their defaults.
type Config struct {
	Output

	// Prepare, when set, makes of a line what is decoded and kept as its
	// body, or says why the line is rejected (a reason, "" for none).
	// Nil: the line as it is.
	Prepare func(line []byte) ([]byte, string)
	// Refuse, when set, says why a valid event is not taken all the same
	// ("" to take it).
	Refuse func(event.Event) string
	// Same says what makes two events of the input one (a repeat is
	// rejected, naming the line it was first on): its key, and how the
	// rejection names it. Nil: the event_id, as `worker enqueue` sends it
	// (the FIFO deduplication id).
	Same func(event.Event) (key, what string)
	// Skip passes over the first Skip lines: read, neither validated nor
	// counted (a resumed import).
	Skip int
}

// Line is one valid line of the input.
type Line struct {
	No    int    // its number, from 1
	Body  []byte // the line, as Prepare made it
	Event event.Event
}

// Reader reads the lines of one input.
type Reader struct {
	in  *bufio.Reader
	cfg Config
	out *console

	read     atomic.Int64 // lines read and settled (rejected, skipped, blank or taken)
	rejected atomic.Int64
	first    map[string]int // key of Same → the line it was first on
}

// NewReader returns a Reader of in (made by NewInput).
func NewReader(in *bufio.Reader, cfg Config) *Reader {
	cfg.Output = cfg.Output.WithDefaults()
	if cfg.Same == nil {
		cfg.Same = func(ev event.Event) (string, string) { return ev.EventID, fmt.Sprintf("event_id %q", ev.EventID) }
	}
	return &Reader{in: in, cfg: cfg, out: &console{cfg: cfg}, first: map[string]int{}}
}

// Lines is how many lines were read and settled so far: each rejected,
// skipped, blank, or handed to take.
func (r *Reader) Lines() int { return int(r.read.Load()) }

// Rejected is how many lines were rejected so far.
func (r *Reader) Rejected() int { return int(r.rejected.Load()) }

// Read checks the input (Check), then reads lines until EOF and hands each
// valid one to take, in input order. It stops when ctx ends or take fails,
// with that error; an *InputError means nothing was read.
func (r *Reader) Read(ctx context.Context, take func(Line) error) error {
	if err := Check(r.in); err != nil {
		return err
	}
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before line %d: %w", lineNo, err)
		}
		raw, readErr := r.in.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			if err := ctx.Err(); err != nil { // the input was closed to end a read that waited
				return fmt.Errorf("interrupted before line %d: %w", lineNo, err)
			}
			return fmt.Errorf("read input at line %d: %w", lineNo, readErr)
		}
		if readErr != nil && len(raw) == 0 { // EOF after a last \n
			return nil
		}
		if lineNo > r.cfg.Skip {
			line := bytes.TrimRight(raw, "\r\n")
			if lineNo == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
			}
			if len(bytes.TrimSpace(line)) > 0 {
				if l, ok := r.accept(lineNo, line); ok {
					if err := take(l); err != nil {
						return err
					}
				}
			}
		}
		r.read.Store(int64(lineNo))
		if readErr != nil { // io.EOF
			return nil
		}
	}
}

// accept validates one line.
func (r *Reader) accept(lineNo int, line []byte) (Line, bool) {
	if r.cfg.Prepare != nil {
		var reason string
		if line, reason = r.cfg.Prepare(line); reason != "" {
			r.Reject(lineNo, reason)
			return Line{}, false
		}
	}
	ev, err := event.Decode(line)
	if err != nil {
		var inv *event.Invalid
		if errors.As(err, &inv) {
			r.Reject(lineNo, inv.Code+": "+inv.Error())
		} else {
			r.Reject(lineNo, err.Error())
		}
		return Line{}, false
	}
	if r.cfg.Refuse != nil {
		if reason := r.cfg.Refuse(ev); reason != "" {
			r.Reject(lineNo, reason)
			return Line{}, false
		}
	}
	key, what := r.cfg.Same(ev)
	if at, dup := r.first[key]; dup {
		r.Reject(lineNo, fmt.Sprintf("duplicate_event_id: %s is on line %d already", what, at))
		return Line{}, false
	}
	r.first[key] = lineNo
	return Line{No: lineNo, Body: line, Event: ev}, true
}

// Reject counts line lineNo as rejected for reason and shows it (the first
// MaxShown). Safe for concurrent use: a line the destination refused later
// is rejected too.
func (r *Reader) Reject(lineNo int, reason string) {
	r.rejected.Add(1)
	r.out.reject(lineNo, reason)
}

// ShowProgress writes text() as the progress line every ProgressEvery
// until the returned function is called, which clears a terminal's line.
func (r *Reader) ShowProgress(text func() string) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(r.cfg.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				r.out.progress(text())
			}
		}
	}()
	return func() {
		close(done)
		<-ended
		r.out.endProgress()
	}
}

// Close says how many rejected lines were not shown.
func (r *Reader) Close() { r.out.hidden(r.Rejected()) }

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

func (c *console) progress(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
