package sqsbatch

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/backoff"
)

// SQS limits of one batch call.
const (
	// MaxEntries is the most entries of one batch call.
	MaxEntries = 10
	// MaxBytes bounds the sum of a SendMessageBatch call's message sizes
	// (see Message.Size); it is also the largest single message.
	MaxBytes = 256 * 1024
)

// Defaults of Config.
const (
	// DefaultMaxAttempts with DefaultBackoff retries an entry for about 7 s
	// of SQS failing: the calls make no retries of their own
	// (noSDKRetries).
	DefaultMaxAttempts = 8
	DefaultCallTimeout = 10 * time.Second
)

// DefaultBackoff is the wait between attempts: 100 ms doubling to 2 s.
var DefaultBackoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second}

// SendAPI is the SQS call a Sender makes.
type SendAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// ReceiptAPI are the SQS calls Receipts makes.
type ReceiptAPI interface {
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// API is all three batch calls.
type API interface {
	SendAPI
	ReceiptAPI
}

var _ API = (*sqs.Client)(nil)

// Config configures a Queue. Zero fields take their defaults.
type Config struct {
	// Backoff is the wait between attempts. Default DefaultBackoff.
	Backoff backoff.Policy
	// MaxAttempts bounds the calls made for one entry; 1 makes no retry.
	// Default DefaultMaxAttempts.
	MaxAttempts int
	// CallTimeout bounds each call. Default DefaultCallTimeout.
	CallTimeout time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Backoff.Base <= 0 {
		c.Backoff = DefaultBackoff
	}
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.CallTimeout = cmp.Or(c.CallTimeout, DefaultCallTimeout)
	return c
}

// queue is what Sender and Receipts share: the queue, the policy, the
// call counters.
type queue struct {
	url   string
	name  string
	cfg   Config
	calls struct{ send, delete, change atomic.Int64 }
}

func newQueue(url string, cfg Config) queue {
	return queue{url: url, name: url[lastSlash(url)+1:], cfg: cfg.WithDefaults()}
}

// noSDKRetries turns the SDK's own retries off for a batch call: chunk
// retries the call and each failed entry under Config's policy, and a
// retryer beneath it would multiply the attempts (3 × MaxAttempts) and
// draw on the SDK's retry quota.
func noSDKRetries(o *sqs.Options) { o.RetryMaxAttempts = 1 }

// Sender sends messages to one queue in batches. It is safe for concurrent
// use.
type Sender struct {
	queue
	api SendAPI
}

// NewSender returns a Sender to the queue at url that calls api.
func NewSender(api SendAPI, url string, cfg Config) *Sender {
	return &Sender{queue: newQueue(url, cfg), api: api}
}

// Receipts deletes received messages of one queue and changes their
// visibility, in batches. It is safe for concurrent use.
type Receipts struct {
	queue
	api ReceiptAPI
}

// NewReceipts returns the Receipts of the queue at url that calls api.
func NewReceipts(api ReceiptAPI, url string, cfg Config) *Receipts {
	return &Receipts{queue: newQueue(url, cfg), api: api}
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// URL is the queue's URL.
func (q *queue) URL() string { return q.url }

// Calls counts the batch calls made, retries included.
type Calls struct {
	SendMessageBatch             int64
	DeleteMessageBatch           int64
	ChangeMessageVisibilityBatch int64
}

// Total is the sum over the three calls.
func (c Calls) Total() int64 {
	return c.SendMessageBatch + c.DeleteMessageBatch + c.ChangeMessageVisibilityBatch
}

// Calls returns the calls made so far.
func (q *queue) Calls() Calls {
	return Calls{
		SendMessageBatch:             q.calls.send.Load(),
		DeleteMessageBatch:           q.calls.delete.Load(),
		ChangeMessageVisibilityBatch: q.calls.change.Load(),
	}
}

// Message is one message to send.
type Message struct {
	Body string
	// GroupID and DeduplicationID are set on FIFO queues (empty: left out).
	GroupID, DeduplicationID string
	// Attributes are the message attributes.
	Attributes map[string]types.MessageAttributeValue
	// Context, when set, is the context of whoever waits for this message:
	// once it is done the message is not sent (again) and fails with its
	// error. A message whose sender stopped waiting must not go out.
	Context context.Context
}

// Size is the message's size as SQS counts it against MaxBytes: the body
// and each attribute's name, type and value.
func (m *Message) Size() int {
	n := len(m.Body)
	for name, v := range m.Attributes {
		n += len(name) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// Visibility is one visibility change: the receipt handle of a received
// message and its new visibility timeout, counted from now.
type Visibility struct {
	Receipt string
	Timeout time.Duration // whole seconds; 0 makes the message receivable at once
}

// Send sends msgs and returns one outcome per message, in order.
func (q *Sender) Send(ctx context.Context, msgs []Message) []error {
	return run(ctx, &q.queue, "SendMessageBatch", 1, msgs,
		func(m *Message) context.Context { return m.Context },
		func(m *Message) int { return m.Size() },
		func(ctx context.Context, batch []*Message) ([]string, []types.BatchResultErrorEntry, error) {
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: make([]types.SendMessageBatchRequestEntry, len(batch))}
			for i, m := range batch {
				e := &in.Entries[i]
				e.Id = aws.String(strconv.Itoa(i))
				e.MessageBody = aws.String(m.Body)
				e.MessageAttributes = m.Attributes
				if m.GroupID != "" {
					e.MessageGroupId = aws.String(m.GroupID)
				}
				if m.DeduplicationID != "" {
					e.MessageDeduplicationId = aws.String(m.DeduplicationID)
				}
			}
			q.calls.send.Add(1)
			out, err := q.api.SendMessageBatch(ctx, in, noSDKRetries)
			if err != nil {
				return nil, nil, err
			}
			return ids(out.Successful, func(e types.SendMessageBatchResultEntry) *string { return e.Id }), out.Failed, nil
		})
}

// Delete deletes the messages of the receipt handles and returns one
// outcome per handle, in order.
func (q *Receipts) Delete(ctx context.Context, receipts []string) []error {
	return run(ctx, &q.queue, "DeleteMessageBatch", receiptChunks, receipts, nil, nil,
		func(ctx context.Context, batch []*string) ([]string, []types.BatchResultErrorEntry, error) {
			in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: make([]types.DeleteMessageBatchRequestEntry, len(batch))}
			for i, r := range batch {
				in.Entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: r}
			}
			q.calls.delete.Add(1)
			out, err := q.api.DeleteMessageBatch(ctx, in, noSDKRetries)
			if err != nil {
				return nil, nil, err
			}
			return ids(out.Successful, func(e types.DeleteMessageBatchResultEntry) *string { return e.Id }), out.Failed, nil
		})
}

// ChangeVisibility changes the visibility of received messages and returns
// one outcome per change, in order.
func (q *Receipts) ChangeVisibility(ctx context.Context, changes []Visibility) []error {
	return run(ctx, &q.queue, "ChangeMessageVisibilityBatch", receiptChunks, changes, nil, nil,
		func(ctx context.Context, batch []*Visibility) ([]string, []types.BatchResultErrorEntry, error) {
			in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url), Entries: make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))}
			for i, v := range batch {
				in.Entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
					Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(v.Receipt),
					VisibilityTimeout: int32(v.Timeout / time.Second),
				}
			}
			q.calls.change.Add(1)
			out, err := q.api.ChangeMessageVisibilityBatch(ctx, in, noSDKRetries)
			if err != nil {
				return nil, nil, err
			}
			return ids(out.Successful, func(e types.ChangeMessageVisibilityBatchResultEntry) *string { return e.Id }), out.Failed, nil
		})
}

// ids are the Ids of an answer's Successful entries.
func ids[T any](entries []T, id func(T) *string) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = aws.ToString(id(e))
	}
	return out
}

// callFunc makes one batch call for batch, whose entries have the ids "0",
// "1", …: it returns the ids SQS accepted and the entries it failed.
type callFunc[E any] func(ctx context.Context, batch []*E) (ok []string, failed []types.BatchResultErrorEntry, err error)

// receiptChunks is how many delete or visibility calls of one Delete or
// ChangeVisibility may be in flight: their order does not matter, and a
// heartbeat extending hundreds of leases must not wait for each call in
// turn.
const receiptChunks = 4

// run is the one batch loop: chunks of at most MaxEntries (and MaxBytes by
// size, when given), each entry answered exactly once, retryable entries
// retried under the back-off policy. Up to parallel chunks are in flight;
// with 1 each chunk waits for the one before, so sends keep their order.
func run[E any](ctx context.Context, q *queue, op string, parallel int, entries []E,
	entryCtx func(*E) context.Context, size func(*E) int, call callFunc[E]) []error {
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	slots := make(chan struct{}, parallel)
	for start := 0; start < len(entries); {
		end, bytes := start, 0
		for end < len(entries) && end-start < MaxEntries {
			if size != nil {
				n := size(&entries[end])
				if end > start && bytes+n > MaxBytes {
					break
				}
				bytes += n
			}
			end++
		}
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		start = end
		if parallel <= 1 {
			chunk(ctx, q, op, entries, idx, errs, entryCtx, call)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			chunk(ctx, q, op, entries, idx, errs, entryCtx, call) // disjoint indexes of errs
		})
	}
	wg.Wait()
	return errs
}

func (q *queue) chunkError(op string, attempts int) *Error {
	return &Error{Op: op, Queue: q.name, Attempts: attempts}
}

// chunk sends the entries at indexes pending (at most MaxEntries) until each
// has an outcome in errs.
func chunk[E any](ctx context.Context, q *queue, op string, entries []E, pending []int, errs []error,
	entryCtx func(*E) context.Context, call callFunc[E]) {
	for attempt := 1; ; attempt++ {
		live := make([]int, 0, len(pending))
		for _, i := range pending {
			if entryCtx != nil {
				if c := entryCtx(&entries[i]); c != nil && c.Err() != nil {
					errs[i] = context.Cause(c)
					continue
				}
			}
			live = append(live, i)
		}
		if len(live) == 0 {
			return
		}
		batch := make([]*E, len(live))
		for j, i := range live {
			batch[j] = &entries[i]
		}
		cctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
		ok, failed, err := call(cctx, batch)
		cancel()

		// An entry to retry holds its own last error in errs meanwhile.
		var retry []int
		if err != nil {
			e := q.chunkError(op, attempt)
			e.Err = err
			for _, i := range live {
				errs[i] = e
			}
			if ctx.Err() == nil && Retryable(err) {
				retry = live
			}
		} else {
			done := make([]bool, len(live))
			for _, id := range ok {
				if j, err := strconv.Atoi(id); err == nil && j >= 0 && j < len(live) && !done[j] {
					done[j] = true
					errs[live[j]] = nil
				}
			}
			for _, f := range failed {
				j, err := strconv.Atoi(aws.ToString(f.Id))
				if err != nil || j < 0 || j >= len(live) || done[j] {
					continue
				}
				done[j] = true
				e := q.chunkError(op, attempt)
				e.Code, e.Message, e.SenderFault = aws.ToString(f.Code), aws.ToString(f.Message), f.SenderFault
				errs[live[j]] = e
				if e.Transient() {
					retry = append(retry, live[j])
				}
			}
			for j, i := range live {
				if !done[j] {
					e := q.chunkError(op, attempt)
					e.Code, e.Message = CodeNotAnswered, "SQS's answer mentioned the entry in neither Successful nor Failed"
					errs[i] = e
					retry = append(retry, i)
				}
			}
		}
		if len(retry) == 0 {
			return
		}
		if attempt >= q.cfg.MaxAttempts || !backoff.Sleep(ctx, q.cfg.Backoff.Delay(attempt-1)) {
			for _, i := range retry {
				if e, ok := errs[i].(*Error); ok && ctx.Err() != nil && e.Err == nil {
					e.Err = ctx.Err()
				}
			}
			return
		}
		slices.Sort(retry) // in the caller's order, as the first call
		pending = retry
	}
}

// StringAttribute is a message attribute of SQS type String holding v.
func StringAttribute(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// StringAttributes are the attributes of SQS type String holding kv's
// values; nil when kv is empty.
func StringAttributes(kv map[string]string) map[string]types.MessageAttributeValue {
	if len(kv) == 0 {
		return nil
	}
	out := make(map[string]types.MessageAttributeValue, len(kv))
	for k, v := range kv {
		out[k] = StringAttribute(v)
	}
	return out
}

// ReceiveAttemptID is a fresh ReceiveRequestAttemptId for one FIFO receive:
// the SDK's own retries of that call carry it, and SQS answers them with the
// same messages instead of hiding those for the visibility timeout. The
// consumer and peek set one on every FIFO receive.
func ReceiveAttemptID() *string {
	return aws.String(fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()))
}
