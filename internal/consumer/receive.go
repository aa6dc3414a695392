package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// receiveBackoff is a receiver's wait after a failed ReceiveMessage (the
// SDK has already retried it).
var receiveBackoff = backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second}

// answerSkew bounds how long before a ReceiveMessage answer arrives SQS
// took its messages (and started their visibility timeouts).
const answerSkew = time.Second

// leaseStart is when the visibility timeouts of a receive's messages began,
// at the earliest: not before the call was sent, and not more than
// answerSkew before its answer, since a long poll returns as soon as it has
// messages. Counting from the send alone would make a poll that waited
// longer than VISIBILITY_TIMEOUT - answerSkew deliver leases already run out.
func leaseStart(sent, answered time.Time) time.Time {
	if t := answered.Add(-answerSkew); t.After(sent) {
		return t
	}
	return sent
}

// receive is one long-poll loop. It asks only for as many messages as there
// is room for under MaxInFlight and does not poll while there is too little
// room, so no message waits in memory for a slot while its visibility
// timeout runs. It starts no poll once ctx (Run's) is cancelled, but a poll
// in flight then goes on under pollCtx, which outlives ctx: cancelling a
// long poll does not stop SQS from delivering into it, and what it
// delivered would stay invisible for VISIBILITY_TIMEOUT and, on a FIFO
// queue, block its chats. What the poll returns after the stop is handled
// within the drain like every message received before it (see accept);
// what is unfinished at the drain bound is released. pollCtx ends at the
// drain bound (see Config.pollWait).
func (r *run) receive(ctx, pollCtx context.Context, id int) {
	log := r.log.With().Int("receiver", id).Logger()
	failures := 0
	fail := func(err error) bool {
		wait := receiveBackoff.Delay(failures)
		failures++
		r.c.stats.receiveErrors.Add(1)
		log.Error().Err(err).Int("failures", failures).Float64("retry_in_ms", ms(wait)).Msg("receive failed")
		return backoff.Sleep(ctx, wait)
	}
	for ctx.Err() == nil {
		n, err := r.slots.Acquire(ctx, r.minBatch, MaxBatch)
		if err != nil {
			return
		}
		if g := r.cfg.Gate; g != nil {
			if err := g.Wait(ctx); err != nil {
				r.slots.Release(n)
				if ctx.Err() != nil || !fail(err) {
					return
				}
				continue
			}
		}
		start := time.Now()
		msgs, err := r.receiveMessages(pollCtx, id, n)
		if err != nil {
			r.slots.Release(n)
			if ctx.Err() != nil || !fail(err) {
				return
			}
			continue
		}
		failures = 0
		if !r.c.reached.Swap(true) && r.cfg.Reached != nil {
			r.cfg.Reached()
		}
		r.slots.Release(n - len(msgs))
		if len(msgs) > 0 {
			r.accept(msgs, leaseStart(start, time.Now()))
		}
	}
}

// receiveMessages asks for up to n messages with a long poll (of
// FirstWaitTime until the queue was reached once), receiver id's.
func (r *run) receiveMessages(ctx context.Context, id, n int) ([]types.Message, error) {
	wait := r.cfg.pollWait()
	if !r.c.reached.Load() {
		wait = min(wait, FirstWaitTime)
	}
	r.polls[id].Store(time.Now().Add(wait).UnixNano())
	defer r.polls[id].Store(0)
	in := &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(r.cfg.QueueURL),
		MaxNumberOfMessages:   int32(n),
		WaitTimeSeconds:       int32(wait / time.Second),
		VisibilityTimeout:     int32(r.cfg.VisibilityTimeout / time.Second),
		MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameSentTimestamp,
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameMessageGroupId,
			types.MessageSystemAttributeNameAWSTraceHeader,
		},
	}
	if r.fifo {
		in.ReceiveRequestAttemptId = sqsbatch.ReceiveAttemptID()
	}
	ctx, cancel := context.WithTimeout(ctx, wait+r.cfg.CallTimeout)
	defer cancel()
	r.c.stats.callsRecv.Add(1)
	out, err := r.c.api.ReceiveMessage(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", config.QueueName(r.cfg.QueueURL), err)
	}
	return out.Messages, nil
}
