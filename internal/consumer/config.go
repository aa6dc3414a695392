package consumer

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
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
	DefaultHoldFor           = 2 * time.Minute
	DefaultHoldBackoff       = 500 * time.Millisecond
	DefaultCallTimeout       = 10 * time.Second
)

// SQS limits the consumer works within.
const (
	// MaxBatch is the most messages one ReceiveMessage returns and the most
	// entries of one DeleteMessageBatch or ChangeMessageVisibilityBatch.
	MaxBatch = 10
	// MaxVisibility is SQS's cap on a message's visibility timeout, counted
	// from its receipt; no extension goes past it.
	MaxVisibility = 12 * time.Hour
	// MaxWaitTime is the longest long poll SQS allows.
	MaxWaitTime = 20 * time.Second
	// MaxErrorAttrLen bounds the `error` attribute of a dead-lettered
	// message, in bytes.
	MaxErrorAttrLen = 1024
)

// Config configures a Consumer. Every field but the queue URLs is optional.
type Config struct {
	// QueueURL is the input queue's URL. Required.
	QueueURL string
	// DLQURL is the dead-letter queue's URL, where poison messages go.
	// Required; it must be a FIFO queue exactly when the input queue is.
	DLQURL string
	// FIFO says the input queue is a FIFO queue: messages of one group are
	// handled one after another, in order. Default: whether QueueURL ends in
	// ".fifo" (it must agree).
	FIFO bool
	// Receivers is the number of concurrent long-poll loops (RECEIVERS).
	// Default DefaultReceivers.
	Receivers int
	// MaxInFlight bounds messages received and not yet finished (deleted,
	// dead-lettered or given back), across all receivers (MAX_IN_FLIGHT).
	// Default DefaultMaxInFlight.
	MaxInFlight int
	// Concurrency bounds handler calls running at once; messages received
	// beyond it wait (their leases extended) and are released at once on
	// shutdown. Default MaxInFlight.
	Concurrency int
	// VisibilityTimeout is asked for on receive and is the length of each
	// lease extension (VISIBILITY_TIMEOUT). Whole seconds, 1s to 12h.
	// Default DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// ShutdownTimeout is how long, once Run's context is cancelled, running
	// handlers may take to finish before their contexts are cancelled
	// (SHUTDOWN_TIMEOUT). Default DefaultShutdownTimeout; a negative value
	// means no wait (handlers are cancelled at once).
	ShutdownTimeout time.Duration
	// FinalFlushTimeout bounds, after ShutdownTimeout, the wait for
	// cancelled handlers and the last deletes: Run returns at most
	// ShutdownTimeout+FinalFlushTimeout after its context is cancelled.
	// Keep the sum below ECS's stopTimeout. Default DefaultFinalFlushTimeout.
	FinalFlushTimeout time.Duration
	// WaitTime is the long-poll wait (WaitTimeSeconds), whole seconds from
	// 1s to 20s (short polling would spin on an empty queue). Default
	// DefaultWaitTime.
	WaitTime time.Duration
	// FlushInterval is the longest a finished message waits for its
	// DeleteMessageBatch (and a visibility change for its batch); a batch
	// of MaxBatch goes at once. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// RetryBackoff is the visibility back-off after a handler's first
	// failure; it doubles with each further receive (with jitter) up to
	// RetryBackoffMax. Default DefaultRetryBackoff; a negative value leaves
	// a failed message's visibility as it is.
	RetryBackoff time.Duration
	// RetryBackoffMax caps the back-off. Default DefaultRetryBackoffMax.
	RetryBackoffMax time.Duration
	// HoldFor bounds how long a message whose handler failed transiently
	// (see Transient) is held and retried in place, counted from its
	// receipt; after that it is given back with the usual back-off. Retries
	// in place wait HoldBackoff, doubled each time up to 30s, then the Gate.
	// Default DefaultHoldFor (2m: a restart or failover of Weaviate, not an
	// outage that needs an operator); a negative value disables holding.
	HoldFor time.Duration
	// HoldBackoff is the first wait before a retry in place. Default
	// DefaultHoldBackoff.
	HoldBackoff time.Duration
	// CallTimeout bounds each SQS call (a long poll gets WaitTime more).
	// Default DefaultCallTimeout.
	CallTimeout time.Duration
	// Gate, when set, pauses receiving while it blocks.
	Gate Gate
	// Observer, when set, receives events for metrics.
	Observer Observer
	// Logger is the parent logger; the consumer logs through a child with
	// component=consumer. The zero Logger logs nothing.
	Logger zerolog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.FIFO = c.FIFO || isFIFOQueue(c.QueueURL)
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
	c.HoldFor = cmp.Or(c.HoldFor, DefaultHoldFor)
	c.HoldBackoff = cmp.Or(c.HoldBackoff, DefaultHoldBackoff)
	c.CallTimeout = cmp.Or(c.CallTimeout, DefaultCallTimeout)
	return c
}

// validate reports every problem of a defaulted Config at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.QueueURL == "" {
		bad("QueueURL is required")
	}
	if c.DLQURL == "" {
		bad("DLQURL is required")
	}
	if c.QueueURL != "" && c.FIFO != isFIFOQueue(c.QueueURL) {
		bad("FIFO is set but queue %s is not a .fifo queue", c.QueueURL)
	}
	if c.DLQURL != "" && c.QueueURL != "" && isFIFOQueue(c.DLQURL) != c.FIFO {
		bad("dead-letter queue %s must be a FIFO queue exactly when the input queue is", c.DLQURL)
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
	if c.VisibilityTimeout < time.Second || c.VisibilityTimeout > MaxVisibility || c.VisibilityTimeout%time.Second != 0 {
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
		{"HoldBackoff", c.HoldBackoff},
		{"CallTimeout", c.CallTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive, not %s", d.name, d.v)
		}
	}
	if c.RetryBackoffMax > MaxVisibility {
		bad("RetryBackoffMax must be at most 12h, not %s", c.RetryBackoffMax)
	}
	return errors.Join(errs...)
}

// isFIFOQueue tells a FIFO queue by its name (URL), as SQS does.
func isFIFOQueue(url string) bool { return strings.HasSuffix(url, ".fifo") }

// queueName is the last path element of a queue URL, for logs.
func queueName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }
