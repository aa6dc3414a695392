// Package peek reads a queue without consuming it: every message it
// receives is held (invisible to other consumers) until the reader gives it
// back, visible again at once (Release), or deletes it (Delete). `worker
// results`, `worker dlq list` and `worker dlq redrive` read through it.
//
// A Reader remembers each message it received by its MessageId, so a
// message received twice (its hold ran out during a long read, or a standard
// queue delivered it twice) is returned once. Receiving ends when a receive
// brings nothing new.
//
// What SQS does not allow, a Reader cannot do either: on a FIFO queue SQS
// hands out a group's messages only while none of that group is in flight,
// so a Reader holding some of a group sees no more of it until it deletes
// or releases them. Each receive counts towards a message's
// ApproximateReceiveCount (and towards a redrive policy on the queue read).
package peek

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

const (
	// DefaultHold is the visibility timeout asked for on receive: how long
	// a message stays hidden from other consumers should the reader die
	// before giving it back.
	DefaultHold = time.Minute
	// DrainWait is the long poll of a receive that looks for more messages
	// once some came: a queue counts as read when a receive that waited
	// this long brings nothing new.
	DrainWait = time.Second
	// MaxWait is the longest long poll SQS allows.
	MaxWait = 20 * time.Second
	// callTimeout bounds a receive beyond its long poll.
	callTimeout = 10 * time.Second
)

// ReceiveAPI is the SQS call a Reader receives with.
type ReceiveAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
}

// API is every SQS call a Reader makes.
type API interface {
	ReceiveAPI
	sqsbatch.ReceiptAPI
}

var _ API = (*sqs.Client)(nil)

// Reader reads one queue. It is not safe for concurrent use.
type Reader struct {
	api      ReceiveAPI
	url      string
	fifo     bool
	hold     time.Duration
	receipts *sqsbatch.Receipts
	held     map[string]string // MessageId → the latest receipt handle, while held
	seen     map[string]bool   // every MessageId received
}

// New returns a Reader of the queue at url that holds each message it
// receives for hold (whole seconds; DefaultHold when 0).
func New(api API, url string, hold time.Duration) *Reader {
	if hold <= 0 {
		hold = DefaultHold
	}
	return &Reader{
		api: api, url: url, fifo: config.IsFIFO(url), hold: hold,
		receipts: sqsbatch.NewReceipts(api, url, sqsbatch.Config{}),
		held:     map[string]string{}, seen: map[string]bool{},
	}
}

// Receive makes one ReceiveMessage call for up to limit messages (at most
// 10) that waits at most wait for them, in whole seconds (rounded) from 1 to
// MaxWait: SQS takes a wait of 0, which the SDK leaves out of the request,
// as the queue's own ReceiveMessageWaitTimeSeconds (20 s on the queues
// `worker setup` makes), so there is no shorter poll. It returns the messages this Reader had not
// received before, with every message and system attribute, and how many
// the call received in all; every message received, new or not, is held
// until Release or Delete.
//
// A cancelled ctx does not cut the call short: a receive cancelled in
// flight may still take messages that then stay hidden for the hold, so the
// call ends by its long poll; what it brought is held, and ctx's error
// returned.
func (r *Reader) Receive(ctx context.Context, limit int, wait time.Duration) (fresh []types.Message, received int, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	seconds := int32(min(max(wait, time.Second), MaxWait).Round(time.Second) / time.Second)
	in := &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(r.url),
		MaxNumberOfMessages:         int32(min(max(limit, 1), sqsbatch.MaxEntries)),
		WaitTimeSeconds:             seconds,
		VisibilityTimeout:           int32(r.hold / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	}
	if r.fifo {
		in.ReceiveRequestAttemptId = sqsbatch.ReceiveAttemptID()
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(seconds)*time.Second+callTimeout)
	defer cancel()
	out, err := r.api.ReceiveMessage(cctx, in)
	if err != nil {
		return nil, 0, fmt.Errorf("receive from %s: %w", config.QueueName(r.url), err)
	}
	for _, m := range out.Messages {
		id := aws.ToString(m.MessageId)
		r.held[id] = aws.ToString(m.ReceiptHandle)
		if !r.seen[id] {
			r.seen[id] = true
			fresh = append(fresh, m)
		}
	}
	return fresh, len(out.Messages), ctx.Err()
}

// Read receives up to limit messages this Reader had not received before
// and hands each receive's new messages to each, in the order SQS returned
// them. It waits at most firstWait for the first message (at least a
// second, see Receive), then reads on while receives that wait DrainWait
// bring new ones. Every message stays
// held. An error of each ends the read with it.
func (r *Reader) Read(ctx context.Context, limit int, firstWait time.Duration, each func([]types.Message) error) error {
	deadline := time.Now().Add(firstWait)
	for got := 0; got < limit; {
		wait := DrainWait
		if got == 0 {
			wait = max(time.Until(deadline), 0)
		}
		msgs, _, err := r.Receive(ctx, limit-got, wait)
		if len(msgs) > 0 {
			got += len(msgs)
			if err := each(msgs); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		if len(msgs) == 0 && (got > 0 || time.Until(deadline) < time.Second/2) {
			return nil // nothing new in the last wait
		}
	}
	return nil
}

// Held is the number of messages held.
func (r *Reader) Held() int { return len(r.held) }

// Delete deletes msgs (messages this Reader received) from the queue and
// returns one outcome per message, in order. It runs to its end even when
// ctx is cancelled: a message already copied elsewhere must not stay.
func (r *Reader) Delete(ctx context.Context, msgs []types.Message) []error {
	receipts := make([]string, len(msgs))
	for i, m := range msgs {
		receipts[i] = r.held[aws.ToString(m.MessageId)]
	}
	errs := r.receipts.Delete(context.WithoutCancel(ctx), receipts)
	for i, err := range errs {
		if err == nil {
			delete(r.held, aws.ToString(msgs[i].MessageId))
		}
	}
	return errs
}

// Release makes every held message receivable again at once (visibility
// timeout 0). It runs to its end even when ctx is cancelled. A message SQS
// says is no longer held (its hold ran out, and maybe someone else received
// it since) counts as released: it is not hidden by this Reader any more.
func (r *Reader) Release(ctx context.Context) error {
	ids := make([]string, 0, len(r.held))
	changes := make([]sqsbatch.Visibility, 0, len(r.held))
	for id, receipt := range r.held {
		ids = append(ids, id)
		changes = append(changes, sqsbatch.Visibility{Receipt: receipt})
	}
	var errs []error
	for i, err := range r.receipts.ChangeVisibility(context.WithoutCancel(ctx), changes) {
		if err == nil || notHeld(err) {
			delete(r.held, ids[i])
			continue
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("give back %d of %d messages (they become receivable when their %v hold ends): %w",
			len(errs), len(changes), r.hold, errors.Join(errs...))
	}
	return nil
}

// notHeld tells whether a visibility change failed because the message is
// not in flight under that receipt any more.
func notHeld(err error) bool {
	var e *sqsbatch.Error
	if !errors.As(err, &e) {
		return false
	}
	code := strings.TrimPrefix(e.Code, "AWS.SimpleQueueService.")
	return code == (&types.MessageNotInflight{}).ErrorCode() || code == (&types.ReceiptHandleIsInvalid{}).ErrorCode()
}
