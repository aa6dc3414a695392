package consumer

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/lease"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// Defaults of Config. A zero field takes its default.
const (
	DefaultReceivers         = 2
	DefaultMaxInFlight       = 256
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultShutdownTimeout   = 25 * time.Second
	DefaultWaitTime          = 20 * time.Second
	DefaultFlushInterval     = 10 * time.Millisecond
	DefaultFinalFlushTimeout = 3 * time.Second
	DefaultRetryBackoff      = 2 * time.Second
	DefaultRetryBackoffMax   = 5 * time.Minute
	DefaultCallTimeout       = 10 * time.Second
)

// FirstWaitTime is the long-poll wait before the queue was reached once:
// the shortest SQS allows, since a wait of 0 is not sent at all and the
// queue's own ReceiveMessageWaitTimeSeconds would apply.
const FirstWaitTime = time.Second

// SQS limits the consumer works within.
const (
	// MaxBatch is the most messages one ReceiveMessage returns.
	MaxBatch = sqsbatch.MaxEntries
	// MaxWaitTime is the longest long poll SQS allows.
	MaxWaitTime = 20 * time.Second
)

// Config configures a Consumer. Every field but QueueURL is optional.
type Config struct {
	// QueueURL is the input queue's URL. Required. A name ending in .fifo
	// is a FIFO queue: the messages of one group are handled one after
	// another, in order.
	QueueURL string
	// Receivers is the number of concurrent long-poll loops (RECEIVERS).
	// Default DefaultReceivers.
	Receivers int
	// MaxInFlight bounds messages received and not yet settled (deleted or
	// given back), across all receivers (MAX_IN_FLIGHT). Default
	// DefaultMaxInFlight.
	MaxInFlight int
	// Concurrency bounds handler calls running at once; messages received
	// beyond it wait (their leases extended); on shutdown they are still
	// handled within ShutdownTimeout. Default MaxInFlight.
	Concurrency int
	// VisibilityTimeout is asked for on receive and is the length of each
	// lease extension (VISIBILITY_TIMEOUT). Whole seconds, 1s to 12h.
	// Default DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// ShutdownTimeout is how long, once Run's context is cancelled, the
	// received messages may take to finish before the rest are released and
	// running handlers cancelled (SHUTDOWN_TIMEOUT). It also bounds each
	// long poll (see pollWait); below 2s the last poll cannot end within it.
	// Default DefaultShutdownTimeout; negative: no wait.
	ShutdownTimeout time.Duration
	// FinalFlushTimeout bounds, after ShutdownTimeout, the wait for
	// cancelled handlers and the last acknowledgements: Run returns at most
	// ShutdownTimeout+FinalFlushTimeout after its context is cancelled.
	// Default DefaultFinalFlushTimeout.
	FinalFlushTimeout time.Duration
	// WaitTime is the long-poll wait (WaitTimeSeconds), whole seconds from
	// 1s to 20s, shortened to end within ShutdownTimeout (see pollWait).
	// Default DefaultWaitTime.
	WaitTime time.Duration
	// FlushInterval is the longest a settled message waits for its
	// DeleteMessageBatch or ChangeMessageVisibilityBatch; a batch of ten, or
	// the first after a quiet FlushInterval, goes at once. Default
	// DefaultFlushInterval. Short on purpose: on a FIFO queue the chat's next
	// event waits for this delete; 10 ms gathers most of a loaded worker's.
	FlushInterval time.Duration
	// RetryBackoff is the visibility back-off after a handler's first
	// failure; it doubles with each further receive (with jitter) up to
	// RetryBackoffMax. Default DefaultRetryBackoff; negative: a failed
	// message's visibility is left as it is.
	RetryBackoff time.Duration
	// RetryBackoffMax caps the back-off. Default DefaultRetryBackoffMax.
	RetryBackoffMax time.Duration
	// CallTimeout bounds each SQS call (a long poll gets WaitTime more).
	// Default DefaultCallTimeout.
	CallTimeout time.Duration
	// Gate, when set, pauses receiving while it blocks.
	Gate Gate
	// Reached, when set, is called once, after the first ReceiveMessage
	// that succeeded: the worker has reached its input queue (its
	// readiness). Until then each poll waits at most FirstWaitTime, so an
	// empty queue is reached at once rather than after a whole long poll.
	Reached func()
	// Logger is the consumer's logger, as given: the caller names the
	// component. The zero Logger logs nothing.
	Logger zerolog.Logger
	// StopHint ends the stop's first log line: how to stop at once, where
	// the caller offers a way (worker run: a second signal). Optional.
	StopHint string
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Receivers = cmp.Or(c.Receivers, DefaultReceivers)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.Concurrency = cmp.Or(c.Concurrency, c.MaxInFlight)
	c.VisibilityTimeout = cmp.Or(c.VisibilityTimeout, DefaultVisibilityTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.FinalFlushTimeout = cmp.Or(c.FinalFlushTimeout, DefaultFinalFlushTimeout)
	c.WaitTime = cmp.Or(c.WaitTime, DefaultWaitTime)
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultFlushInterval)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.RetryBackoffMax = cmp.Or(c.RetryBackoffMax, DefaultRetryBackoffMax)
	c.CallTimeout = cmp.Or(c.CallTimeout, DefaultCallTimeout)
	return c
}

// pollWait is the wait of each long poll: WaitTime, but at most a second
// less than ShutdownTimeout (whole seconds, at least 1s), so that a poll in
// flight at SIGTERM returns within the drain and what it brings is given
// back instead of stranded. With SHUTDOWN_TIMEOUT at its default (25s) the
// polls are SQS's longest, 20s.
func (c Config) pollWait() time.Duration {
	if c.ShutdownTimeout <= 0 {
		return c.WaitTime
	}
	return max(min(c.WaitTime, (c.ShutdownTimeout-answerSkew).Truncate(time.Second)), time.Second)
}

// fifo tells whether the queue is a FIFO queue.
func (c Config) fifo() bool { return config.IsFIFO(c.QueueURL) }

// validate reports every problem of a defaulted Config at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.QueueURL == "" {
		bad("QueueURL is required")
	}
	if c.Receivers < 1 {
		bad("Receivers must be at least 1, not %d", c.Receivers)
	}
	if c.MaxInFlight < 1 {
		bad("MaxInFlight must be at least 1, not %d", c.MaxInFlight)
	}
	if c.Concurrency < 1 || c.Concurrency > c.MaxInFlight {
		bad("Concurrency must be 1 to MaxInFlight (%d), not %d", c.MaxInFlight, c.Concurrency)
	}
	if c.VisibilityTimeout < time.Second || c.VisibilityTimeout > lease.MaxVisibility || c.VisibilityTimeout%time.Second != 0 {
		bad("VisibilityTimeout must be whole seconds from 1s to 12h, not %s", c.VisibilityTimeout)
	}
	if c.WaitTime < time.Second || c.WaitTime > MaxWaitTime || c.WaitTime%time.Second != 0 {
		bad("WaitTime must be whole seconds from 1s to 20s, not %s", c.WaitTime)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"FinalFlushTimeout", c.FinalFlushTimeout},
		{"FlushInterval", c.FlushInterval},
		{"RetryBackoffMax", c.RetryBackoffMax},
		{"CallTimeout", c.CallTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive, not %s", d.name, d.v)
		}
	}
	if c.RetryBackoffMax > lease.MaxVisibility {
		bad("RetryBackoffMax must be at most 12h, not %s", c.RetryBackoffMax)
	}
	return errors.Join(errs...)
}
