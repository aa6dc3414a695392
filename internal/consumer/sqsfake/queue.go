package sqsfake

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// DefaultVisibilityTimeout is a Queue's own visibility timeout, for a
// receive that asks for none (SQS's default).
const DefaultVisibilityTimeout = 30 * time.Second

// Queue is an in-memory standard SQS queue (see the package documentation).
// Its zero value is not usable: make it with NewQueue. It is safe for
// concurrent use.
type Queue struct {
	mu       sync.Mutex
	msgs     []*message // in send order; deleted ones removed
	sent     int
	receipts int
	changed  chan struct{} // closed, and replaced, when a message may have become visible
}

// message is one message of a Queue.
type message struct {
	id, body  string
	sentAt    time.Time
	visibleAt time.Time // visible from then on
	receipt   string    // of its latest receive; "" before the first
	receives  int
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{changed: make(chan struct{})} }

// API returns an SQS whose calls go to q, to wrap or steer per test.
func (q *Queue) API() *SQS {
	return &SQS{
		ReceiveMessageFunc:               q.ReceiveMessage,
		DeleteMessageBatchFunc:           q.DeleteMessageBatch,
		ChangeMessageVisibilityBatchFunc: q.ChangeMessageVisibilityBatch,
	}
}

// Send adds a message per body, visible at once.
func (q *Queue) Send(bodies ...string) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bodies {
		q.sent++
		q.msgs = append(q.msgs, &message{id: fmt.Sprintf("m-%d", q.sent), body: b, sentAt: now, visibleAt: now})
	}
	q.wakeLocked()
}

// Depth is how many messages are visible and how many are in flight
// (received, their visibility timeout still running).
func (q *Queue) Depth() (visible, inFlight int) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.visibleAt.After(now) {
			inFlight++
		} else {
			visible++
		}
	}
	return visible, inFlight
}

// ReceiveMessage takes up to MaxNumberOfMessages visible messages (at least
// one), oldest first, making them invisible for the receive's
// VisibilityTimeout (DefaultVisibilityTimeout if 0) from the answer on. With
// none visible it waits up to WaitTimeSeconds for one (sent, or come back
// after its visibility timeout); a ctx done first takes none.
func (q *Queue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	deadline := time.Now().Add(seconds(in.WaitTimeSeconds))
	vis := seconds(in.VisibilityTimeout)
	if vis == 0 {
		vis = DefaultVisibilityTimeout
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now := time.Now()
		q.mu.Lock()
		out, next := q.takeLocked(now, max(int(in.MaxNumberOfMessages), 1), vis)
		changed := q.changed
		q.mu.Unlock()
		if len(out) > 0 || !now.Before(deadline) {
			return &sqs.ReceiveMessageOutput{Messages: out}, nil
		}
		wake := deadline
		if !next.IsZero() && next.Before(wake) {
			wake = next
		}
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// takeLocked receives up to n messages visible at now; next is when the
// first invisible one comes back (zero if none is in flight).
func (q *Queue) takeLocked(now time.Time, n int, vis time.Duration) (out []types.Message, next time.Time) {
	for _, m := range q.msgs {
		if m.visibleAt.After(now) {
			if next.IsZero() || m.visibleAt.Before(next) {
				next = m.visibleAt
			}
			continue
		}
		if len(out) == n {
			continue
		}
		q.receipts++
		m.receipt = fmt.Sprintf("%s-r%d", m.id, q.receipts)
		m.receives++
		m.visibleAt = now.Add(vis)
		out = append(out, types.Message{
			MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.receipt), Body: aws.String(m.body),
			Attributes: map[string]string{
				string(types.MessageSystemAttributeNameApproximateReceiveCount): strconv.Itoa(m.receives),
				string(types.MessageSystemAttributeNameSentTimestamp):           strconv.FormatInt(m.sentAt.UnixMilli(), 10),
			},
		})
	}
	return out, next
}

// DeleteMessageBatch deletes the message of each entry whose receipt handle
// is its latest; an older one fails the entry with ReceiptHandleIsInvalid.
func (q *Queue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		i := q.findLocked(aws.ToString(e.ReceiptHandle))
		if i < 0 {
			out.Failed = append(out.Failed, invalid(e.Id))
			continue
		}
		q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// ChangeMessageVisibilityBatch sets, for each entry whose receipt handle is
// its message's latest and whose message is still in flight, the
// visibility timeout to run from now; others fail as SQS fails them
// (ReceiptHandleIsInvalid, MessageNotInflight).
func (q *Queue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		i := q.findLocked(aws.ToString(e.ReceiptHandle))
		switch {
		case i < 0:
			out.Failed = append(out.Failed, invalid(e.Id))
		case !q.msgs[i].visibleAt.After(now):
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("MessageNotInflight"), SenderFault: true})
		default:
			q.msgs[i].visibleAt = now.Add(seconds(e.VisibilityTimeout))
			out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
		}
	}
	q.wakeLocked() // a visibility of 0 makes a message visible at once
	return out, nil
}

// findLocked is the index of the message whose latest receipt handle is
// receipt, or -1.
func (q *Queue) findLocked(receipt string) int {
	for i, m := range q.msgs {
		if receipt != "" && m.receipt == receipt {
			return i
		}
	}
	return -1
}

// wakeLocked wakes the long polls waiting.
func (q *Queue) wakeLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func invalid(id *string) types.BatchResultErrorEntry {
	return types.BatchResultErrorEntry{Id: id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true}
}

func seconds(n int32) time.Duration { return time.Duration(n) * time.Second }
