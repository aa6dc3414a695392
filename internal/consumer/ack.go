package consumer

import (
	"cmp"
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Retries of acknowledgements (deletes, visibility changes, dead-letter
// sends) on top of the SDK's own.
const (
	ackAttempts       = 5
	ackBackoffBase    = 100 * time.Millisecond
	ackBackoffMax     = 2 * time.Second
	deadLetterGroupID = "poison" // MessageGroupId in a FIFO dead-letter queue for a message without one
)

// batcher gathers items into batches of up to MaxBatch and hands each to
// flush: when a batch is full, or interval after its first item. Up to
// workers flushes run at once.
type batcher[T any] struct {
	interval time.Duration
	flush    func(context.Context, []T)
	in       chan T
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

// newBatcher returns a batcher whose queue holds capacity items: it never
// blocks as long as no more than capacity items are outstanding (the
// consumer's MaxInFlight bounds them).
func newBatcher[T any](capacity int, interval time.Duration, flush func(context.Context, []T)) *batcher[T] {
	return &batcher[T]{interval: interval, flush: flush, in: make(chan T, capacity)}
}

func (b *batcher[T]) start(ctx context.Context, workers int) {
	batches := make(chan []T)
	b.wg.Go(func() {
		defer close(batches)
		b.collect(batches)
	})
	for range workers {
		b.wg.Go(func() {
			for batch := range batches {
				b.flush(ctx, batch)
			}
		})
	}
}

func (b *batcher[T]) collect(out chan<- []T) {
	var batch []T
	timer := time.NewTimer(b.interval)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case it, ok := <-b.in:
			if !ok {
				if len(batch) > 0 {
					out <- batch
				}
				return
			}
			batch = append(batch, it)
			if len(batch) == 1 {
				timer.Reset(b.interval)
			}
			if len(batch) == MaxBatch {
				timer.Stop()
				out <- batch
				batch = nil
			}
		case <-timer.C:
			if len(batch) > 0 {
				out <- batch
				batch = nil
			}
		}
	}
}

// add queues it; it reports false once the batcher is closed.
func (b *batcher[T]) add(it T) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.in <- it
	return true
}

// close flushes what is queued and ends the batcher; wait waits for that.
func (b *batcher[T]) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.in)
	}
}

func (b *batcher[T]) wait() { b.wg.Wait() }

// batchIndex reads back the Id this package gives batch entries (their
// index); -1 if it is not one.
func batchIndex(id *string, n int) int {
	i, err := strconv.Atoi(aws.ToString(id))
	if err != nil || i < 0 || i >= n {
		return -1
	}
	return i
}

// flushDeletes deletes finished messages. Entries that fail for a reason
// that may pass (server fault, throttling, the whole call failing) are
// retried with back-off; the others, and those still failing after
// ackAttempts, are reported: logged and counted in AckErrors.
func (r *run) flushDeletes(ctx context.Context, ds []*delivery) {
	pending := ds
	for attempt := 1; ; attempt++ {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(pending))
		for i, d := range pending {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.receipt)}
		}
		out, err := r.c.deleteBatch(ctx, entries)
		if err != nil {
			if !retryable(err) || attempt == ackAttempts || ctx.Err() != nil {
				r.ackFailed("delete", pending, "", err)
				return
			}
			r.c.log.Debug().Err(err).Int("attempt", attempt).Msg("delete batch failed; retrying")
		} else {
			handled := make([]bool, len(pending))
			for _, s := range out.Successful {
				if i := batchIndex(s.Id, len(pending)); i >= 0 && !handled[i] {
					handled[i] = true
					r.c.stats.deleted.Add(1)
					r.done(pending[i])
				}
			}
			var retry []*delivery
			for _, f := range out.Failed {
				i := batchIndex(f.Id, len(pending))
				if i < 0 || handled[i] {
					continue
				}
				handled[i] = true
				if entryFatal(f) || attempt == ackAttempts {
					r.ackFailed("delete", pending[i:i+1], aws.ToString(f.Code), nil)
				} else {
					retry = append(retry, pending[i])
				}
			}
			for i, d := range pending {
				if !handled[i] { // in neither list: try again
					retry = append(retry, d)
				}
			}
			if len(retry) == 0 {
				return
			}
			if attempt == ackAttempts {
				r.ackFailed("delete", retry, "", nil)
				return
			}
			pending = retry
		}
		if !sleep(ctx, jitter(expBackoff(ackBackoffBase, ackBackoffMax, attempt-1))) {
			r.ackFailed("delete", pending, "", ctx.Err())
			return
		}
	}
}

// flushChanges applies back-offs and releases. A failure is not dangerous
// (the message comes back when its current visibility runs out) but is
// reported like a failed delete.
func (r *run) flushChanges(ctx context.Context, cs []change) {
	pending := cs
	for attempt := 1; ; attempt++ {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(pending))
		for i, ch := range pending {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(ch.d.receipt), VisibilityTimeout: ch.vis,
			}
		}
		out, err := r.c.changeBatch(ctx, entries)
		var retry []change
		if err != nil {
			if !retryable(err) || attempt == ackAttempts || ctx.Err() != nil {
				r.changesFailed(pending, "", err)
				return
			}
			retry = pending
		} else {
			handled := make([]bool, len(pending))
			for _, s := range out.Successful {
				if i := batchIndex(s.Id, len(pending)); i >= 0 && !handled[i] {
					handled[i] = true
					if pending[i].vis == 0 {
						r.c.stats.released.Add(1)
					}
					r.done(pending[i].d)
				}
			}
			for _, f := range out.Failed {
				i := batchIndex(f.Id, len(pending))
				if i < 0 || handled[i] {
					continue
				}
				handled[i] = true
				if entryFatal(f) || attempt == ackAttempts {
					r.changesFailed(pending[i:i+1], aws.ToString(f.Code), nil)
				} else {
					retry = append(retry, pending[i])
				}
			}
			for i, ch := range pending {
				if !handled[i] {
					retry = append(retry, ch)
				}
			}
			if len(retry) == 0 {
				return
			}
			if attempt == ackAttempts {
				r.changesFailed(retry, "", nil)
				return
			}
		}
		pending = retry
		if !sleep(ctx, jitter(expBackoff(ackBackoffBase, ackBackoffMax, attempt-1))) {
			r.changesFailed(pending, "", ctx.Err())
			return
		}
	}
}

// ackFailed reports messages whose acknowledgement was given up and frees
// their slots. They come back after their visibility timeout, so a
// finished message may be handled again (SQS delivers at least once).
func (r *run) ackFailed(what string, ds []*delivery, code string, err error) {
	for _, d := range ds {
		r.c.stats.ackErrors.Add(1)
		r.warnLog.Error().Err(err).Str("message_id", d.ID).Str("ack", what).Str("error_code", code).
			Msg("acknowledgement failed: message comes back after its visibility timeout")
		r.done(d)
	}
}

func (r *run) changesFailed(cs []change, code string, err error) {
	ds := make([]*delivery, len(cs))
	for i, ch := range cs {
		ds[i] = ch.d
	}
	what := "back-off"
	if len(cs) > 0 && cs[0].vis == 0 {
		what = "release"
	}
	r.ackFailed(what, ds, code, err)
}

// deadLetter sends d's body, untouched, to the dead-letter queue with the
// attributes error_code and error. It reports whether the message is there;
// only then may it be deleted from the input queue.
func (r *run) deadLetter(d *delivery, p *PoisonError) bool {
	code := attrText(cmp.Or(p.Code, "poison"), MaxErrorAttrLen)
	text := p.Error()
	if p.Err != nil {
		text = p.Err.Error()
	}
	text = attrText(cmp.Or(text, code), MaxErrorAttrLen)
	in := &sqs.SendMessageInput{
		QueueUrl:    aws.String(r.cfg.DLQURL),
		MessageBody: aws.String(d.Body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"error_code": {DataType: aws.String("String"), StringValue: aws.String(code)},
			"error":      {DataType: aws.String("String"), StringValue: aws.String(text)},
		},
	}
	if r.cfg.FIFO {
		in.MessageGroupId = aws.String(cmp.Or(d.GroupID, deadLetterGroupID))
		in.MessageDeduplicationId = aws.String(d.ID)
	}
	for attempt := 1; ; attempt++ {
		err := r.c.sendDeadLetter(r.ackCtx, in)
		if err == nil {
			r.c.stats.rejected.Add(1)
			if obs := r.cfg.Observer; obs != nil {
				obs.MessageRejected()
			}
			r.warnLog.Warn().Str("message_id", d.ID).Str("error_code", code).Str("error", text).
				Msg("poison message moved to the dead-letter queue")
			return true
		}
		if !retryable(err) || attempt == ackAttempts || r.ackCtx.Err() != nil ||
			!sleep(r.ackCtx, jitter(expBackoff(ackBackoffBase, ackBackoffMax, attempt-1))) {
			r.c.stats.ackErrors.Add(1)
			r.warnLog.Error().Err(err).Str("message_id", d.ID).Str("error_code", code).
				Msg("dead-letter send failed: message left for redelivery")
			return false
		}
	}
}
