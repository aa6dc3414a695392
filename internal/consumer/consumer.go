package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"
)

// SQSAPI is the part of the SQS client the consumer calls.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// Consumer turns an SQS queue into a bounded stream of handler calls. Create
// it with New; call Run once at a time.
type Consumer struct {
	api     SQSAPI
	cfg     Config
	log     zerolog.Logger
	stats   counters
	running atomic.Bool
}

// New returns a Consumer of cfg.QueueURL that calls api. cfg is completed
// with WithDefaults; an invalid cfg gives an error naming every problem.
func New(api SQSAPI, cfg Config) (*Consumer, error) {
	if api == nil {
		return nil, errors.New("consumer: nil SQS client")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	return &Consumer{
		api: api,
		cfg: cfg,
		log: cfg.Logger.With().Str("component", "consumer").Str("queue", queueName(cfg.QueueURL)).Logger(),
	}, nil
}

// Config returns the consumer's configuration, defaults filled in.
func (c *Consumer) Config() Config { return c.cfg }

// Stats returns a snapshot of the consumer's counters. It is cheap and safe
// to call at any time, from any goroutine.
func (c *Consumer) Stats() Stats { return c.stats.snapshot() }

// Run receives messages and calls h for each until ctx is cancelled (the
// worker's SIGTERM), then drains:
//
//   - receiving stops at once, and every message received but not started
//     (including any a long poll returns after the stop) is released with
//     visibility 0 so another worker can take it at once;
//   - running handlers get ShutdownTimeout to finish while their leases are
//     still extended; then their contexts are cancelled (ErrShutdownTimeout);
//   - finished messages are deleted, failed ones given back.
//
// Run returns nil after a clean drain. If handlers or acknowledgements are
// still outstanding FinalFlushTimeout after the shutdown bound, it returns an
// error wrapping ErrShutdownTimeout without waiting for them (those messages
// come back after their visibility timeout).
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("consumer: nil handler")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run is already running")
	}
	defer c.running.Store(false)
	return newRun(c, h).run(ctx)
}

// run is Run's body: start the parts, wait for the stop, drain in order.
func (r *run) run(ctx context.Context) error {
	cfg := r.cfg
	base := context.WithoutCancel(ctx)
	ackCtx, ackCancel := context.WithCancel(base)
	defer ackCancel()
	workCtx, workCancel := context.WithCancelCause(base)
	defer workCancel(nil)
	hbCtx, hbCancel := context.WithCancel(base)
	defer hbCancel()
	r.ackCtx, r.workCtx = ackCtx, workCtx

	r.deletes.start(ackCtx, deleteWorkers)
	r.changes.start(ackCtx, changeWorkers)
	var heartbeat, receivers sync.WaitGroup
	heartbeat.Go(func() { r.heartbeat(hbCtx) })
	for i := range cfg.Receivers {
		receivers.Go(func() { r.receive(ctx, i) })
	}
	r.log.Info().Int("receivers", cfg.Receivers).Int("max_in_flight", cfg.MaxInFlight).
		Bool("fifo", cfg.FIFO).Dur("visibility_timeout", cfg.VisibilityTimeout).Msg("consuming")

	<-ctx.Done()
	stopAt := time.Now()
	r.stop()
	receivers.Wait()
	r.log.Info().Int("running", r.runningCount()).Msg("stopping: receiving stopped, unstarted messages released")

	shutdown := max(cfg.ShutdownTimeout, 0)
	hardDeadline := stopAt.Add(shutdown + cfg.FinalFlushTimeout)
	var err error
	if !waitUntil(r.idle, stopAt.Add(shutdown)) {
		r.log.Warn().Int("running", r.runningCount()).Dur("shutdown_timeout", shutdown).
			Msg("shutdown timeout ran out: cancelling running handlers")
		workCancel(ErrShutdownTimeout)
		if !waitUntil(r.idle, hardDeadline) {
			err = fmt.Errorf("drain %s: %d handlers ignored cancellation: %w",
				queueName(cfg.QueueURL), r.runningCount(), ErrShutdownTimeout)
		}
	}
	if err == nil && !waitUntil(r.drained, hardDeadline) {
		err = fmt.Errorf("drain %s: %d messages not acknowledged: %w",
			queueName(cfg.QueueURL), r.liveCount(), ErrShutdownTimeout)
	}
	hbCancel()
	heartbeat.Wait()
	r.deletes.close()
	r.changes.close()
	flushed := make(chan struct{})
	go func() {
		r.deletes.wait()
		r.changes.wait()
		close(flushed)
	}()
	if !waitUntil(flushed, hardDeadline) {
		ackCancel()
		<-flushed
	}
	if err == nil {
		r.handlers.Wait() // all returned: idle was reached
		r.log.Info().Dur("took", time.Since(stopAt)).Msg("drained")
	}
	return err
}

// waitUntil waits for ch to close until deadline; it reports whether it did.
func waitUntil(ch <-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// receiveMessages asks for up to n messages with a long poll.
func (c *Consumer) receiveMessages(ctx context.Context, n int) ([]types.Message, error) {
	in := &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(c.cfg.QueueURL),
		MaxNumberOfMessages:   int32(n),
		WaitTimeSeconds:       int32(c.cfg.WaitTime / time.Second),
		VisibilityTimeout:     int32(c.cfg.VisibilityTimeout / time.Second),
		MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameSentTimestamp,
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameMessageGroupId,
		},
	}
	if c.cfg.FIFO {
		// The SDK's own retries of this call then return the same messages
		// instead of leaving them invisible for a visibility timeout.
		in.ReceiveRequestAttemptId = aws.String(fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTime+c.cfg.CallTimeout)
	defer cancel()
	c.stats.callReceive.Add(1)
	out, err := c.api.ReceiveMessage(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", queueName(c.cfg.QueueURL), err)
	}
	return out.Messages, nil
}

// deleteBatch deletes up to MaxBatch messages in one call.
func (c *Consumer) deleteBatch(ctx context.Context, entries []types.DeleteMessageBatchRequestEntry) (*sqs.DeleteMessageBatchOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	c.stats.callDelete.Add(1)
	out, err := c.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
		QueueUrl: aws.String(c.cfg.QueueURL),
		Entries:  entries,
	})
	if err != nil {
		return nil, fmt.Errorf("delete batch from %s: %w", queueName(c.cfg.QueueURL), err)
	}
	return out, nil
}

// changeBatch changes the visibility of up to MaxBatch messages in one call.
func (c *Consumer) changeBatch(ctx context.Context, entries []types.ChangeMessageVisibilityBatchRequestEntry) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	c.stats.callChange.Add(1)
	out, err := c.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: aws.String(c.cfg.QueueURL),
		Entries:  entries,
	})
	if err != nil {
		return nil, fmt.Errorf("change visibility batch on %s: %w", queueName(c.cfg.QueueURL), err)
	}
	return out, nil
}

// sendDeadLetter sends one message to the dead-letter queue.
func (c *Consumer) sendDeadLetter(ctx context.Context, in *sqs.SendMessageInput) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	c.stats.callSend.Add(1)
	if _, err := c.api.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send to dead-letter queue %s: %w", queueName(c.cfg.DLQURL), err)
	}
	return nil
}
