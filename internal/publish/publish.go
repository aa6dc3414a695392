package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/event"
)

// Limits of one SendMessageBatch call.
const (
	MaxBatchEntries = 10
	// MaxBatchBytes bounds the sum of the entries' sizes (body plus message
	// attribute names, types and values), as SQS counts it; it is also the
	// largest single message.
	MaxBatchBytes = 256 * 1024
)

// Defaults of Config.
const (
	// DefaultLinger is how long a batch waits for more entries after its
	// first (see the package documentation for why 5 ms).
	DefaultLinger = 5 * time.Millisecond
	// DefaultSenders is how many SendMessageBatch calls may be in flight.
	DefaultSenders = 4
	// DefaultRetryBase is the first back-off before a retry; it doubles with
	// each attempt, with full jitter.
	DefaultRetryBase = 50 * time.Millisecond
	// DefaultRetryMax caps the back-off.
	DefaultRetryMax = 2 * time.Second
	// DefaultMaxAttempts bounds the calls made for one entry.
	DefaultMaxAttempts = 8
	// DefaultAttemptTimeout bounds one SendMessageBatch call.
	DefaultAttemptTimeout = 10 * time.Second
)

// Message attribute names of every result.
const (
	AttrEventID = "event_id"
	AttrChatID  = "chat_id"
	AttrRoute   = "route"
)

// SQSAPI is the one SQS call the publisher makes.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// Config configures a Publisher.
type Config struct {
	// QueueURL is the response queue's URL. Required. A name ending in
	// .fifo makes it a FIFO queue.
	QueueURL string
	// Linger is how long a batch waits for more entries after its first.
	// Default DefaultLinger.
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
	// Logger is for retries (debug); failures are returned to the callers,
	// not logged. The zero Logger discards.
	Logger zerolog.Logger
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

// EntryError is a result that SQS refused (an entry of the Failed list).
type EntryError struct {
	EventID     string
	Code        string
	Message     string
	SenderFault bool
}

func (e *EntryError) Error() string {
	fault := "SQS's side"
	if e.SenderFault {
		fault = "sender's fault"
	}
	return fmt.Sprintf("SQS refused result %s (%s): %s: %s", e.EventID, fault, e.Code, e.Message)
}

// TooLargeError is a result larger than SQS's message size limit.
type TooLargeError struct {
	EventID string
	Size    int // bytes, as SQS counts them
	Limit   int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("result %s is %d bytes, more than SQS's %d-byte message limit", e.EventID, e.Size, e.Limit)
}

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
	api  SQSAPI
	cfg  Config
	fifo bool
	log  zerolog.Logger

	mu     sync.RWMutex // held for reading while handing an entry to the loop
	closed bool

	in       chan *entry
	sendq    chan []*entry
	finished chan []*entry
	closing  chan struct{} // closed by Close: flush and stop when idle
	stopped  chan struct{} // closed when the loop and the senders are gone

	sendCtx    context.Context // calls and back-offs; cancelled when Close gives up
	cancelSend context.CancelFunc

	calls, batches, accepted, failed, retries atomic.Uint64

	testHookAccepted func(eventID string) // set by tests only: called when the loop takes an entry
}

type entry struct {
	ctx     context.Context
	eventID string
	group   string
	body    string
	attrs   map[string]types.MessageAttributeValue
	size    int
	done    chan error // buffered: the sender never blocks on it
}

// New starts a publisher to cfg.QueueURL (cfg filled with WithDefaults).
// Close stops it.
func New(api SQSAPI, cfg Config) (*Publisher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid publisher configuration: %w", err)
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		api:        api,
		cfg:        cfg,
		fifo:       strings.HasSuffix(cfg.QueueURL, ".fifo"),
		log:        cfg.Logger.With().Str("component", "publish").Logger(),
		in:         make(chan *entry),
		sendq:      make(chan []*entry),
		finished:   make(chan []*entry),
		closing:    make(chan struct{}),
		stopped:    make(chan struct{}),
		sendCtx:    sendCtx,
		cancelSend: cancel,
	}
	var senders sync.WaitGroup
	for range cfg.Senders {
		senders.Go(p.sender)
	}
	go func() {
		p.loop()
		close(p.sendq)
		senders.Wait()
		cancel()
		close(p.stopped)
	}()
	return p, nil
}

// Publish sends r and returns once SQS accepted it (nil) or it failed: an
// *EntryError when SQS refused it, a *TooLargeError, ErrClosed, the last
// call's error when attempts ran out or the error was permanent, or ctx's
// error when the caller stopped waiting (the result may still be sent; its
// event_id lets a FIFO queue or the reader deduplicate).
func (p *Publisher) Publish(ctx context.Context, r *event.Result) error {
	e, err := p.newEntry(ctx, r)
	if err != nil {
		return err
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return fmt.Errorf("publish result %s: %w", r.EventID, ErrClosed)
	}
	select {
	case p.in <- e:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		return fmt.Errorf("publish result %s: %w", r.EventID, ctx.Err())
	}
	select {
	case err := <-e.done:
		if err != nil {
			return fmt.Errorf("publish result %s: %w", r.EventID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish result %s: %w", r.EventID, ctx.Err())
	}
}

func (p *Publisher) newEntry(ctx context.Context, r *event.Result) (*entry, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode result %s: %w", r.EventID, err)
	}
	attrs := map[string]types.MessageAttributeValue{}
	size := len(body)
	for name, v := range map[string]string{AttrEventID: r.EventID, AttrChatID: r.ChatID, AttrRoute: r.Route} {
		if v == "" {
			continue // SQS refuses empty attribute values
		}
		attrs[name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		size += len(name) + len("String") + len(v)
	}
	if size > MaxBatchBytes {
		return nil, &TooLargeError{EventID: r.EventID, Size: size, Limit: MaxBatchBytes}
	}
	return &entry{ctx: ctx, eventID: r.EventID, group: r.ChatID, body: string(body), attrs: attrs, size: size, done: make(chan error, 1)}, nil
}

// Close stops accepting results, sends the pending ones and waits for the
// calls in flight. If ctx ends first, the calls are cancelled, their
// results fail, and Close returns ctx's error once everything has stopped.
// Give it a context that outlives receiving.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
	}
	p.mu.Unlock()
	select {
	case <-p.stopped:
		return nil
	case <-ctx.Done():
		p.cancelSend()
		<-p.stopped
		return fmt.Errorf("flush results: %w", ctx.Err())
	}
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() Stats {
	return Stats{
		Calls:    p.calls.Load(),
		Batches:  p.batches.Load(),
		Accepted: p.accepted.Load(),
		Failed:   p.failed.Load(),
		Retries:  p.retries.Load(),
	}
}

// loop forms batches and hands them to the senders. It never blocks on
// anything but its select, so senders can always report finished batches.
func (p *Publisher) loop() {
	var (
		batch   []*entry
		size    int
		ready   [][]*entry              // formed batches waiting for a sender
		held    = map[string][]*entry{} // FIFO: chat → entries waiting for its entry in flight
		pending int                     // entries accepted and not yet finished
		closing = p.closing
		done    bool
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			ready = append(ready, batch)
			batch, size = nil, 0
			timer.Stop()
		}
	}
	add := func(e *entry) {
		if size+e.size > MaxBatchBytes {
			flush()
		}
		batch = append(batch, e)
		size += e.size
		switch {
		case len(batch) == MaxBatchEntries || done:
			flush()
		case len(batch) == 1:
			timer.Reset(p.cfg.Linger)
		}
	}
	for {
		if done && pending == 0 {
			return
		}
		var (
			in    chan *entry
			sendq chan []*entry
			next  []*entry
		)
		if !done && len(ready) < p.cfg.Senders {
			in = p.in // stop taking entries while enough batches wait
		}
		if len(ready) > 0 {
			sendq, next = p.sendq, ready[0]
		}
		select {
		case e := <-in:
			pending++
			if p.testHookAccepted != nil {
				p.testHookAccepted(e.eventID)
			}
			if p.fifo {
				if waiting, busy := held[e.group]; busy {
					held[e.group] = append(waiting, e)
					continue
				}
				held[e.group] = nil
			}
			add(e)
		case sendq <- next:
			ready = ready[1:]
			p.batches.Add(1)
		case <-timer.C:
			flush()
		case fin := <-p.finished:
			pending -= len(fin)
			if p.fifo {
				for _, e := range fin {
					waiting := held[e.group]
					if len(waiting) == 0 {
						delete(held, e.group)
						continue
					}
					held[e.group] = waiting[1:]
					add(waiting[0])
				}
			}
		case <-closing:
			closing, done = nil, true
			flush()
		}
	}
}

func (p *Publisher) sender() {
	for batch := range p.sendq {
		p.send(batch)
		p.finished <- batch
	}
}

// send delivers one batch, retrying what failed transiently, and answers
// every entry.
func (p *Publisher) send(batch []*entry) {
	pending := batch
	for attempt := 1; ; attempt++ {
		live := make([]*entry, 0, len(pending))
		for _, e := range pending {
			if err := e.ctx.Err(); err != nil {
				p.answer(e, err) // the caller has stopped waiting
				continue
			}
			live = append(live, e)
		}
		if len(live) == 0 {
			return
		}
		retry, err := p.call(live)
		if len(retry) == 0 {
			return
		}
		switch {
		case attempt >= p.cfg.MaxAttempts:
			err = fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		case p.sendCtx.Err() != nil:
			err = fmt.Errorf("publisher closing: %w", err)
		default:
			p.log.Debug().Err(err).Int("entries", len(retry)).Int("attempt", attempt).Msg("retrying SendMessageBatch")
			if p.sleep(p.backoff(attempt)) {
				pending = retry
				p.retries.Add(1)
				continue
			}
			err = fmt.Errorf("publisher closing: %w", err)
		}
		for _, e := range retry {
			p.answer(e, err)
		}
		return
	}
}

// call makes one SendMessageBatch call for entries, answers the entries it
// settled and returns those to retry with the reason.
func (p *Publisher) call(entries []*entry) (retry []*entry, err error) {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.cfg.QueueURL), Entries: make([]types.SendMessageBatchRequestEntry, len(entries))}
	for i, e := range entries {
		in.Entries[i] = types.SendMessageBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			MessageBody:       aws.String(e.body),
			MessageAttributes: e.attrs,
		}
		if p.fifo {
			in.Entries[i].MessageGroupId = aws.String(e.group)
			in.Entries[i].MessageDeduplicationId = aws.String(e.eventID)
		}
	}
	ctx, cancel := context.WithTimeout(p.sendCtx, p.cfg.AttemptTimeout)
	defer cancel()
	p.calls.Add(1)
	out, err := p.api.SendMessageBatch(ctx, in)
	if err != nil {
		err = fmt.Errorf("send %d results to %s: %w", len(entries), p.cfg.QueueURL, err)
		if p.sendCtx.Err() == nil && (IsTransient(err) || ctx.Err() != nil) { // ctx: this attempt's timeout
			return entries, err
		}
		for _, e := range entries {
			p.answer(e, err)
		}
		return nil, nil
	}
	settled := make([]bool, len(entries))
	byID := func(id *string) (int, bool) {
		i, err := strconv.Atoi(aws.ToString(id))
		return i, err == nil && i >= 0 && i < len(entries) && !settled[i]
	}
	for _, s := range out.Successful {
		if i, ok := byID(s.Id); ok {
			settled[i] = true
			p.answer(entries[i], nil)
		}
	}
	var lastErr error
	for _, f := range out.Failed {
		i, ok := byID(f.Id)
		if !ok {
			continue
		}
		settled[i] = true
		ee := &EntryError{EventID: entries[i].eventID, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
		if !ee.SenderFault {
			retry, lastErr = append(retry, entries[i]), ee
			continue
		}
		p.answer(entries[i], ee) // the caller handles it; not logged here
	}
	for i, ok := range settled {
		if !ok { // neither successful nor failed: SQS did not say
			retry = append(retry, entries[i])
			lastErr = fmt.Errorf("SQS's answer did not mention result %s", entries[i].eventID)
		}
	}
	return retry, lastErr
}

func (p *Publisher) answer(e *entry, err error) {
	if err == nil {
		p.accepted.Add(1)
	} else {
		p.failed.Add(1)
	}
	e.done <- err
}

// backoff is the wait before attempt+1: full jitter over an exponentially
// growing bound.
func (p *Publisher) backoff(attempt int) time.Duration {
	bound := p.cfg.RetryMax
	if attempt < 30 {
		bound = min(p.cfg.RetryMax, p.cfg.RetryBase<<(attempt-1))
	}
	return time.Duration(rand.Int64N(int64(bound)) + 1)
}

// sleep waits d; false if the publisher is closing for good.
func (p *Publisher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.sendCtx.Done():
		return false
	}
}
