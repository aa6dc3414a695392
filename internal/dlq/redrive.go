package dlq

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// AttrRedriveRun is the message attribute a redrive puts on each message
// it moves back: the run's id. A dead letter that carries the id of the run
// reading it failed again during that run (redriven, then dead-lettered
// again while workers ran) and is left where it is, so a run never moves
// one message in circles.
const AttrRedriveRun = "redrive_run"

// DeduplicationPrefix starts the deduplication id of a message moved back
// to a FIFO input queue, followed by its dead-letter message id.
const DeduplicationPrefix = "redrive-"

// RedriveHold is the visibility timeout a redrive receives with
// (peek.New's hold): long enough that skipped messages stay held through a
// run of many thousands, short enough that a run that died gives them back
// soon.
const RedriveHold = 5 * time.Minute

// RedriveOptions say what a redrive does.
type RedriveOptions struct {
	// Max bounds the messages moved back; 0 is no bound (every dead letter).
	Max int
	// All moves back invalid events too (an error_code, or a body that is no
	// valid event: see Check).
	All bool
	// DryRun moves nothing: it counts what a redrive would move and skip.
	DryRun bool
	// RunID names the run (AttrRedriveRun); empty makes a fresh one.
	RunID string
}

// RedriveReport counts what a redrive did.
type RedriveReport struct {
	// Redriven is how many messages were moved back (or would be, in a
	// dry run); Skipped how many were left in the dead-letter queue:
	// Invalid of them are invalid events (an error_code, or a body
	// event.Decode refuses), CameBack failed again during the run.
	Redriven, Skipped int
	Invalid, CameBack int
}

// Redriver moves dead letters back to the input queue.
//
// Each receive of at most ten dead letters is sent to the input queue in
// one SendMessageBatch, in the order SQS handed them out (oldest first: on
// a FIFO queue that is each group's order; a standard queue keeps none, so
// each receive is sorted by SentTimestamp), and only the messages SQS
// accepted are then deleted from the dead-letter queue. A message is never
// lost: a crash between the send and the delete leaves it in both queues,
// and the copy is a second delivery of its event, which the worker handles
// idempotently (one stored object per event; on a FIFO response queue the
// result's deduplication id is the event_id). On a FIFO input queue each
// message keeps its MessageGroupId and gets the deduplication id
// "redrive-<its dead-letter message id>": new, so SQS does not drop it as a
// repeat of the original send, and the same in every run, so SQS drops
// the second copy a run repeated after such a crash within its 5-minute
// deduplication window.
//
// The body and every message attribute are kept, except error_code and
// error: a redriven event starts clean, and should it fail again, the
// worker (or the redrive policy) sets them anew, so a stale reason never
// makes a later redrive skip a message that is valid now. A copy gets
// handler.AttrFirstSent, the dead letter's SentTimestamp, unless it has
// one already: what orders a mute or unmute without sent_at. (On a
// standard queue that is the original's; AWS resets a FIFO message's
// enqueue time when the redrive policy moves it to its dead-letter queue.)
//
// Dead letters skipped (invalid events without All, those that came back
// during the run) stay held until the run ends and are then given back,
// receivable at once. On a FIFO dead-letter queue a held message hides the
// rest of its group, so after a pass that moved something the run gives the
// skipped messages back and reads again: the messages of a group behind a
// skipped one are moved when SQS returns them in the same receive as it,
// as it does for the first messages of a group. A dry run moves nothing and
// so sees at most those first messages of each FIFO group.
//
// It is safe to run while workers run (they never read the dead-letter
// queue, and a message that fails again during the run is left alone) and
// twice in a row, or two at once: each dead letter is held by one reader
// while it is moved.
type Redriver struct {
	dlq   *peek.Reader
	input Sender
	fifo  bool
	opts  RedriveOptions
}

// NewRedriver returns a Redriver from the dead-letter queue dlq reads to
// the input queue input sends to; inputFIFO says the input queue is FIFO.
func NewRedriver(dlq *peek.Reader, input Sender, inputFIFO bool, opts RedriveOptions) *Redriver {
	if opts.RunID == "" {
		opts.RunID = NewRunID(time.Now())
	}
	return &Redriver{dlq: dlq, input: input, fifo: inputFIFO, opts: opts}
}

// NewRunID returns a fresh redrive run id: the time and a random suffix.
func NewRunID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run moves dead letters back until the queue holds no more it may move,
// or opts.Max were moved. Skipped messages are given back before it
// returns. An error stops the run; the report counts what was done.
func (d *Redriver) Run(ctx context.Context) (rep RedriveReport, err error) {
	defer func() {
		if rerr := d.dlq.Release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	moved, stale := false, 0
	for d.opts.Max == 0 || rep.Redriven < d.opts.Max {
		// Always ten, also when fewer may move: SQS hands a group's messages
		// out in order within one receive, and those beyond the bound stay
		// held until the run ends.
		msgs, received, err := d.dlq.Receive(ctx, sqsbatch.MaxEntries, peek.DrainWait)
		if err != nil {
			return rep, err
		}
		if received == 0 {
			if !d.fifo || d.opts.DryRun || !moved || d.dlq.Held() == 0 {
				return rep, nil
			}
			// Held skipped messages hide the rest of their groups: give
			// them back and read again, as long as a pass moves something.
			if err := d.dlq.Release(ctx); err != nil {
				return rep, err
			}
			moved, stale = false, 0
			continue
		}
		if len(msgs) == 0 {
			// Only messages received before: after a release, the skipped
			// coming back; in a run longer than the hold, messages whose
			// hold ran out. More such receives in a row than it takes to
			// receive everything held again end the run.
			if stale++; stale > d.dlq.Held()/sqsbatch.MaxEntries+2 {
				return rep, nil
			}
			continue
		}
		stale = 0
		if !d.fifo {
			slices.SortStableFunc(msgs, func(a, b types.Message) int { return handler.SentAt(a).Compare(handler.SentAt(b)) })
		}
		left := len(msgs)
		if d.opts.Max > 0 {
			left = d.opts.Max - rep.Redriven
		}
		send := d.skip(msgs, left, &rep)
		if d.opts.DryRun || len(send) == 0 {
			if d.opts.DryRun {
				rep.Redriven += len(send)
			}
			continue
		}
		n, err := d.move(ctx, send)
		rep.Redriven += n
		moved = moved || n > 0
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// skip returns the first messages to move, at most limit, in order, and
// counts those it leaves in the queue before the last one returned (or
// all, when fewer than limit move).
func (d *Redriver) skip(msgs []types.Message, limit int, rep *RedriveReport) []types.Message {
	var send []types.Message
	for _, m := range msgs {
		if len(send) == limit {
			break
		}
		switch {
		case attr(m, AttrRedriveRun) == d.opts.RunID:
			rep.Skipped++
			rep.CameBack++
		case !d.opts.All && invalid(m):
			rep.Skipped++
			rep.Invalid++
		default:
			send = append(send, m)
		}
	}
	return send
}

// move sends msgs to the input queue and deletes those SQS accepted from
// the dead-letter queue. It returns how many it moved; an error says which
// message it could not send, or could not delete after sending.
func (d *Redriver) move(ctx context.Context, msgs []types.Message) (int, error) {
	out := make([]sqsbatch.Message, len(msgs))
	for i, m := range msgs {
		out[i] = d.redriven(m)
	}
	var sent []types.Message
	var sendErr error
	for i, err := range d.input.Send(ctx, out) {
		if err == nil {
			sent = append(sent, msgs[i])
		} else if sendErr == nil {
			sendErr = fmt.Errorf("send dead letter %s to the input queue (it stays in the dead-letter queue): %w", aws.ToString(msgs[i].MessageId), err)
		}
	}
	moved := 0
	var delErr error
	for i, err := range d.dlq.Delete(ctx, sent) {
		if err == nil {
			moved++
		} else if delErr == nil {
			delErr = fmt.Errorf("delete dead letter %s after sending it to the input queue (it is in both queues now; "+
				"the worker handles the second delivery idempotently): %w", aws.ToString(sent[i].MessageId), err)
		}
	}
	return moved, errors.Join(sendErr, delErr)
}

// redriven is the input queue message for dead letter m.
func (d *Redriver) redriven(m types.Message) sqsbatch.Message {
	attrs := maps.Clone(m.MessageAttributes)
	delete(attrs, AttrErrorCode)
	delete(attrs, AttrError)
	delete(attrs, AttrRedriveRun)
	attrs = capAttributes(attrs, 2)
	if attrs == nil {
		attrs = map[string]types.MessageAttributeValue{}
	}
	attrs[AttrRedriveRun] = sqsbatch.StringAttribute(d.opts.RunID)
	// The copy's SentTimestamp is its own: the original's goes with it,
	// for what is ordered by it (a mute or unmute without sent_at).
	if first := m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)]; first != "" {
		if _, ok := attrs[handler.AttrFirstSent]; !ok {
			attrs[handler.AttrFirstSent] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(first)}
		}
	}
	msg := sqsbatch.Message{Body: aws.ToString(m.Body), Attributes: attrs}
	if d.fifo {
		msg.GroupID = cmp.Or(m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)], DefaultGroupID)
		msg.DeduplicationID = DeduplicationPrefix + aws.ToString(m.MessageId)
	}
	return msg
}
