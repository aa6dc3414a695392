package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/batcher"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/fifo"
	"github.com/chatprep/chatprep/internal/sqsbatch"
	"github.com/chatprep/chatprep/internal/tracing"
)

// Limits of one SendMessageBatch call.
const (
	MaxBatchEntries = sqsbatch.MaxEntries
	// MaxBatchBytes bounds the sum of the entries' sizes (body plus message
	// attribute names, types and values), as SQS counts it; it is also the
	// largest single message.
	MaxBatchBytes = sqsbatch.MaxBytes
)

// Defaults of Config.
const (
	// DefaultLinger is how long a batch waits for more entries after its
	// first, under load (see the package documentation for why 5 ms).
	DefaultLinger = 5 * time.Millisecond
	// DefaultSenders is how many SendMessageBatch calls may be in flight.
	DefaultSenders = 4
	// DefaultRetryBase is the first back-off before a retry; it doubles with
	// each attempt, with jitter.
	DefaultRetryBase = 50 * time.Millisecond
	// DefaultRetryMax caps the back-off.
	DefaultRetryMax = 2 * time.Second
	// DefaultMaxAttempts bounds the calls made for one entry: about 9 s of
	// SQS failing with the back-off above (the calls make no retries of
	// their own), before the message is given back to be tried again.
	DefaultMaxAttempts = 10
	// DefaultAttemptTimeout bounds one SendMessageBatch call.
	DefaultAttemptTimeout = 10 * time.Second
)

// Message attribute names of every result.
const (
	AttrEventID = "event_id"
	AttrChatID  = "chat_id"
	AttrRoute   = "route"
)

// SQSAPI is the SQS call the publisher makes.
type SQSAPI interface{ sqsbatch.SendAPI }

// Config configures a Publisher.
type Config struct {
	// QueueURL is the response queue's URL. Required. A name ending in
	// .fifo makes it a FIFO queue.
	QueueURL string
	// Linger is how long a batch waits for more entries after its first
	// when results are arriving (one came less than Linger before it); a
	// result after a quiet Linger goes at once. Default DefaultLinger.
	Linger time.Duration
	// Senders is how many SendMessageBatch calls may be in flight at once.
	// Default DefaultSenders.
	Senders int
	// RetryBase is the back-off before the first retry. Default
	// DefaultRetryBase.
	RetryBase time.Duration
	// RetryMax caps the back-off. Default DefaultRetryMax.
	RetryMax time.Duration
	// MaxAttempts bounds the calls made for one entry. Default
	// DefaultMaxAttempts.
	MaxAttempts int
	// AttemptTimeout bounds one call. Default DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Tracer, when set, makes a span "send <queue>" per Publish call, a
	// child of the caller's span, until SQS accepted or failed the result.
	Tracer trace.Tracer
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Linger = cmp.Or(c.Linger, DefaultLinger)
	c.Senders = cmp.Or(c.Senders, DefaultSenders)
	c.RetryBase = cmp.Or(c.RetryBase, DefaultRetryBase)
	c.RetryMax = cmp.Or(c.RetryMax, max(DefaultRetryMax, c.RetryBase))
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, DefaultAttemptTimeout)
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.QueueURL == "" {
		errs = append(errs, errors.New("queue URL: required"))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("linger %v: must not be negative", c.Linger))
	}
	if c.Senders < 1 {
		errs = append(errs, fmt.Errorf("senders %d: must be at least 1", c.Senders))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("retry back-off %v to %v: must be positive and increasing", c.RetryBase, c.RetryMax))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d: must be at least 1", c.MaxAttempts))
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("attempt timeout %v: must be positive", c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("publisher closed")

// TooLargeError is a result larger than SQS's message size limit.
type TooLargeError struct {
	EventID string
	Size    int // bytes, as SQS counts them
	Limit   int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("result %s is %d bytes, more than SQS's %d-byte message limit", e.EventID, e.Size, e.Limit)
}

// TooLarge reports that the message is too large for its queue: a smaller
// one may go.
func (e *TooLargeError) TooLarge() bool { return true }

// Stats are the publisher's counters.
type Stats struct {
	Calls    uint64 // SendMessageBatch calls made, retries included
	Batches  uint64 // batches formed (each is one call unless retried)
	Accepted uint64 // results SQS accepted
	Failed   uint64 // results that failed (refused, out of attempts or abandoned by their caller)
	Retries  uint64 // calls that were retries
}

// Publisher batches results to one queue. It is safe for concurrent use.
type Publisher struct {
	queue *sqsbatch.Sender
	fifo  bool
	batch *batcher.Batcher[*entry]

	tracer    trace.Tracer
	spanName  string
	spanAttrs []trace.SpanStartOption

	mu  sync.Mutex
	seq fifo.Sequencer[*entry] // FIFO: per chat, the entry in flight and those waiting for it

	batches, accepted, failed atomic.Uint64

	testHookAccepted func(eventID string) // set by tests only: called once an entry is in a batch
}

// entry is one result on its way.
type entry struct {
	ctx   context.Context
	id    string
	group string
	msg   sqsbatch.Message
	size  int
	turn  chan struct{} // FIFO: closed when it is its chat's turn
	done  chan error    // buffered: answered exactly once, never waited on by the sender
	taken atomic.Bool   // answered
}

// New starts a publisher to cfg.QueueURL (cfg filled with WithDefaults).
// Close stops it.
func New(api SQSAPI, cfg Config) (*Publisher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid publisher configuration: %w", err)
	}
	p := &Publisher{
		queue: sqsbatch.NewSender(api, cfg.QueueURL, sqsbatch.Config{
			Backoff:     backoff.Policy{Base: cfg.RetryBase, Max: cfg.RetryMax},
			MaxAttempts: cfg.MaxAttempts,
			CallTimeout: cfg.AttemptTimeout,
		}),
		fifo:     config.IsFIFO(cfg.QueueURL),
		tracer:   cfg.Tracer,
		spanName: "send " + config.QueueName(cfg.QueueURL),
		spanAttrs: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
			semconv.MessagingSystemAWSSQS, semconv.MessagingDestinationName(config.QueueName(cfg.QueueURL)))},
	}
	if p.tracer == nil {
		p.tracer = noop.NewTracerProvider().Tracer("")
	}
	var err error
	p.batch, err = batcher.New(batcher.Config{
		MaxItems: MaxBatchEntries, MaxBytes: MaxBatchBytes, Linger: cfg.Linger, Concurrency: cfg.Senders,
	}, func(e *entry) int { return e.size }, p.send)
	if err != nil {
		return nil, fmt.Errorf("invalid publisher configuration: %w", err)
	}
	return p, nil
}

// Publish sends r and returns once SQS accepted it (nil) or it failed: a
// *sqsbatch.Error when SQS refused it or attempts ran out, a
// *TooLargeError, ErrClosed, or ctx's error when the caller stopped waiting
// (a result already in a call may still arrive; its event_id lets a FIFO
// queue or the reader deduplicate it).
//
// On a FIFO queue the results of one chat go one at a time, in the order
// Publish was called: a later one waits until the earlier is accepted or
// failed.
//
// The result's traceparent (and tracestate) attribute names ctx's span,
// the caller's; the publisher's own span is its child, so that the next
// stage continues the caller's trace from the caller's span.
func (p *Publisher) Publish(ctx context.Context, r *event.Result) error {
	e, err := p.newEntry(ctx, r)
	_, span := p.tracer.Start(ctx, p.spanName, p.spanAttrs...)
	if err == nil {
		err = p.publish(ctx, e, r)
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err
}

func (p *Publisher) publish(ctx context.Context, e *entry, r *event.Result) error {
	if p.fifo {
		p.mu.Lock()
		head := p.seq.Add(e.group, e)
		p.mu.Unlock()
		if !head {
			select {
			case <-e.turn:
			case <-ctx.Done():
				select {
				case <-e.turn: // its turn came too: pass it on
					p.answer(e, ctx.Err())
				default: // still waiting: its turn is passed on when it comes
				}
				return fmt.Errorf("publish result %s: %w", r.EventID, ctx.Err())
			}
		}
	}
	if err := p.batch.Add(ctx, e); err != nil {
		if errors.Is(err, batcher.ErrClosed) {
			err = ErrClosed
		}
		p.answer(e, err)
		return fmt.Errorf("publish result %s: %w", r.EventID, err)
	}
	if p.testHookAccepted != nil {
		p.testHookAccepted(e.id)
	}
	var err error
	select {
	case err = <-e.done:
	case <-ctx.Done():
		// An answer that came as the caller gave up still counts: a result
		// SQS accepted is out, and its caller must know (its message is
		// then deleted even though its lease was just lost).
		select {
		case err = <-e.done:
		default:
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("publish result %s: %w", r.EventID, err)
	}
	return nil
}

func (p *Publisher) newEntry(ctx context.Context, r *event.Result) (*entry, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode result %s: %w", r.EventID, err)
	}
	e := &entry{ctx: ctx, id: r.EventID, group: r.ChatID, turn: make(chan struct{}), done: make(chan error, 1)}
	// U+FFFE and U+FFFF of a stored text, escaped: SQS refuses them raw.
	e.msg = sqsbatch.Message{Body: string(sqsbatch.JSONBody(body)), Attributes: map[string]types.MessageAttributeValue{}, Context: ctx}
	set := func(name, v string) {
		if v != "" { // SQS refuses empty attribute values
			e.msg.Attributes[name] = sqsbatch.StringAttribute(v)
		}
	}
	set(AttrEventID, r.EventID)
	set(AttrChatID, r.ChatID)
	set(AttrRoute, r.Route)
	tracing.Inject(ctx, set) // traceparent, tracestate
	if p.fifo {
		e.msg.GroupID, e.msg.DeduplicationID = r.ChatID, r.EventID
	}
	if e.size = e.msg.Size(); e.size > MaxBatchBytes {
		return nil, &TooLargeError{EventID: r.EventID, Size: e.size, Limit: MaxBatchBytes}
	}
	return e, nil
}

// send is the batcher's flush: one batch, every entry answered.
func (p *Publisher) send(ctx context.Context, batch []*entry) {
	p.batches.Add(1)
	msgs := make([]sqsbatch.Message, len(batch))
	for i, e := range batch {
		msgs[i] = e.msg
	}
	for i, err := range p.queue.Send(ctx, msgs) {
		p.answer(batch[i], err)
	}
}

// answer settles e once and, on a FIFO queue, gives its chat's turn to the
// next entry whose caller still waits.
func (p *Publisher) answer(e *entry, err error) {
	if !e.taken.CompareAndSwap(false, true) {
		return
	}
	if err == nil {
		p.accepted.Add(1)
	} else {
		p.failed.Add(1)
	}
	e.done <- err
	if !p.fifo {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		next, ok := p.seq.Next(e.group)
		if !ok {
			return
		}
		if next.ctx.Err() == nil {
			close(next.turn)
			return
		}
		// Its caller stopped waiting before its turn: it is not sent.
		if next.taken.CompareAndSwap(false, true) {
			p.failed.Add(1)
			next.done <- next.ctx.Err()
		}
	}
}

// Close stops accepting results, sends the pending ones and waits for the
// calls in flight. If ctx ends first, the calls are cancelled, their
// results fail, and Close returns ctx's error once everything has stopped.
// Give it a context that outlives receiving.
func (p *Publisher) Close(ctx context.Context) error {
	if err := p.batch.Close(ctx); err != nil {
		return fmt.Errorf("flush results: %w", err)
	}
	return nil
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() Stats {
	calls := uint64(p.queue.Calls().SendMessageBatch)
	batches := p.batches.Load()
	return Stats{
		Calls:    calls,
		Batches:  batches,
		Accepted: p.accepted.Load(),
		Failed:   p.failed.Load(),
		Retries:  calls - min(calls, batches),
	}
}
