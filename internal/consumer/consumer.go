package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/lease"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// SQSAPI is the part of the SQS client the consumer calls: the long poll,
// and the batch calls of its acknowledgements and lease extensions.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	sqsbatch.ReceiptAPI
}

var _ SQSAPI = (*sqs.Client)(nil)

// Gate is a pause signal: Wait blocks while receiving must pause (a
// dependency's circuit breaker is open) and returns nil once it may go on,
// or ctx's error. A nil Gate never pauses.
type Gate interface {
	Wait(ctx context.Context) error
}

// Causes of a handler context's cancellation (see context.Cause).
var (
	// ErrLeaseLost: the message's receipt handle is no longer valid or its
	// visibility timeout ran out; another worker may be handling it.
	ErrLeaseLost = errors.New("consumer: message lease lost")
	// ErrShutdownTimeout: the consumer was stopped and the shutdown bound
	// ran out before the handler finished.
	ErrShutdownTimeout = errors.New("consumer: shutdown timeout ran out")
)

// Consumer turns an SQS queue into a bounded stream of handler calls.
// Create it with New; call Run once at a time.
type Consumer struct {
	api     SQSAPI
	queue   *sqsbatch.Receipts
	leases  *lease.Keeper
	cfg     Config
	log     zerolog.Logger
	stats   counters
	running atomic.Bool
	reached atomic.Bool // a ReceiveMessage succeeded
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
	c := &Consumer{
		api:   api,
		queue: sqsbatch.NewReceipts(api, cfg.QueueURL, sqsbatch.Config{CallTimeout: cfg.CallTimeout}),
		cfg:   cfg,
		log:   cfg.Logger.With().Str("queue", config.QueueName(cfg.QueueURL)).Logger(),
	}
	var err error
	c.leases, err = lease.New(c.queue, lease.Config{VisibilityTimeout: cfg.VisibilityTimeout, Logger: c.log.Sample(burst())})
	if err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	return c, nil
}

// Config returns the consumer's configuration, defaults filled in.
func (c *Consumer) Config() Config { return c.cfg }

// Run receives messages and calls h for each until ctx is cancelled (the
// worker's SIGTERM), then drains: no new poll, what was received (and what
// the polls in flight bring) finished within ShutdownTimeout, the rest
// released (see the package documentation). It
// returns nil after a clean drain; if handlers or acknowledgements are
// still outstanding FinalFlushTimeout after the shutdown bound, it returns
// an error wrapping ErrShutdownTimeout without waiting for them (those
// messages come back after their visibility timeout).
func (c *Consumer) Run(ctx context.Context, h handler.Handler) error {
	if h == nil {
		return errors.New("consumer: nil handler")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run is already running")
	}
	defer c.running.Store(false)
	r, err := newRun(c, h)
	if err != nil {
		return err
	}
	return r.run(ctx)
}

// run is Run's body: start the parts, wait for the stop, drain in order.
func (r *run) run(ctx context.Context) error {
	cfg := r.cfg
	base := context.WithoutCancel(ctx)
	workCtx, workCancel := context.WithCancelCause(base)
	defer workCancel(nil)
	hbCtx, hbCancel := context.WithCancel(base)
	defer hbCancel()
	r.runCtx, r.workCtx = ctx, workCtx

	// A poll in flight at the stop may run to its end, within the drain;
	// without a drain (ShutdownTimeout < 0) it is cut at once.
	pollCtx, pollCancel := context.WithCancel(base)
	defer pollCancel()
	stopPolls := context.AfterFunc(ctx, func() {
		if cfg.ShutdownTimeout <= 0 {
			pollCancel()
			return
		}
		time.AfterFunc(cfg.ShutdownTimeout, pollCancel)
	})
	defer stopPolls()

	var heartbeat, receivers sync.WaitGroup
	heartbeat.Go(func() { r.leases.Run(hbCtx) })
	for i := range cfg.Receivers {
		receivers.Go(func() { r.receive(ctx, pollCtx, i) })
	}
	r.log.Info().Int("receivers", cfg.Receivers).Int("max_in_flight", cfg.MaxInFlight).
		Bool("fifo", r.fifo).Float64("visibility_timeout_ms", ms(cfg.VisibilityTimeout)).Msg("consuming")

	<-ctx.Done()
	stopAt := time.Now()
	shutdown := max(cfg.ShutdownTimeout, 0)
	hardDeadline := stopAt.Add(shutdown + cfg.FinalFlushTimeout)
	r.stop()
	if shutdown == 0 {
		r.cut() // no drain: what waits is released at once
	}
	running, live := r.counts()
	r.logStop(stopAt, running, live)
	receivers.Wait() // the polls in flight return; what they bring is handled too
	r.pollsDone()
	var err error
	if !waitUntil(r.idle, stopAt.Add(shutdown)) {
		running, _ = r.counts()
		r.log.Warn().Int("running", running).Float64("shutdown_timeout_ms", ms(shutdown)).
			Msg("shutdown timeout ran out: cancelling running handlers, releasing waiting messages")
		r.cut()
		workCancel(ErrShutdownTimeout)
		if !waitUntil(r.idle, hardDeadline) {
			running, _ = r.counts()
			err = fmt.Errorf("drain %s: %d handlers ignored cancellation: %w",
				config.QueueName(cfg.QueueURL), running, ErrShutdownTimeout)
		}
	}
	if err == nil && !waitUntil(r.drained, hardDeadline) {
		_, live = r.counts()
		err = fmt.Errorf("drain %s: %d messages not acknowledged: %w",
			config.QueueName(cfg.QueueURL), live, ErrShutdownTimeout)
	}
	hbCancel()
	heartbeat.Wait()
	flushCtx, cancel := context.WithDeadline(base, hardDeadline)
	r.acks.close(flushCtx)
	cancel()
	if err == nil {
		r.handlers.Wait() // all returned: idle was reached
		r.log.Info().Float64("duration_ms", ms(time.Since(stopAt))).Msg("drained")
	}
	return err
}

// logStop logs the stop's first line: what it waits for (the long polls in
// flight, cut at the drain bound at the latest; what was received) and how
// to stop at once (Config.StopHint).
func (r *run) logStop(stopAt time.Time, running, live int) {
	msg, polls, left := "stopping: no new polls; finishing what was received", 0, time.Duration(0)
	for i := range r.polls {
		if end := r.polls[i].Load(); end != 0 && r.cfg.ShutdownTimeout > 0 {
			polls, left = polls+1, max(left, min(time.Unix(0, end).Sub(stopAt), r.cfg.ShutdownTimeout))
		}
	}
	if polls > 0 {
		msg = fmt.Sprintf("stopping: waiting up to %v for the long poll in flight to return (SQS delivers into a cancelled one), then finishing what was received", left.Round(100*time.Millisecond))
	}
	if r.cfg.StopHint != "" {
		msg += "; " + r.cfg.StopHint
	}
	r.log.Info().Int("running", running).Int("received", live).Int("polls_in_flight", polls).Float64("poll_wait_ms", ms(left)).Msg(msg)
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

// burst rate-limits per-message warnings: 20 a second.
func burst() zerolog.Sampler { return &zerolog.BurstSampler{Burst: 20, Period: time.Second} }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
