package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message is one message received from the input queue, as a handler sees it.
// The handler must not keep it after Handle returns.
type Message struct {
	ID           string            // SQS MessageId
	Body         string            // the body, untouched
	GroupID      string            // FIFO MessageGroupId, "" on a standard queue
	ReceiveCount int               // ApproximateReceiveCount (1 on the first delivery)
	SentAt       time.Time         // SentTimestamp
	ReceivedAt   time.Time         // when this worker received it
	Attributes   map[string]string // string (and number) message attributes
}

// Handler handles one message. Returning nil means the message is finished
// and will be deleted; an error leaves it for redelivery with a back-off; an
// error wrapping *PoisonError (see Poison) sends it to the dead-letter queue;
// an error wrapping *TransientError (see Transient) has the consumer hold
// the message and call the handler again.
//
// ctx is not cancelled when the consumer is asked to stop: it is cancelled
// when the message's lease is lost (context.Cause is ErrLeaseLost) or when
// the shutdown bound runs out (ErrShutdownTimeout). A handler must not
// publish its result once ctx is done.
type Handler interface {
	Handle(ctx context.Context, m *Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message) error

// Handle calls f(ctx, m).
func (f HandlerFunc) Handle(ctx context.Context, m *Message) error { return f(ctx, m) }

// Gate is a pause signal: Wait blocks while receiving must pause (for example
// while a dependency's circuit breaker is open) and returns nil once it may
// go on, or ctx's error. A nil Gate never pauses.
type Gate interface {
	Wait(ctx context.Context) error
}

// Observer receives the consumer's events for metrics. Its methods are
// called on the consumer's hot path and must not block.
type Observer interface {
	// MessageReceived is called once per received message with the time
	// between SentTimestamp and its receipt.
	MessageReceived(queueWait time.Duration)
	// MessageRejected is called once a poison message is in the
	// dead-letter queue.
	MessageRejected()
	// MessageFailed is called when a handler fails and the message is left
	// for redelivery.
	MessageFailed()
}

// PoisonError marks a message that can never be handled (its body cannot be
// decoded or breaks the contract). The consumer moves such a message to the
// dead-letter queue with Code as its `error_code` attribute.
type PoisonError struct {
	Code string // machine-readable reason, e.g. event.CodeNotJSON
	Err  error  // what is wrong; its text becomes the `error` attribute
}

func (e *PoisonError) Error() string {
	if e.Err == nil {
		return "poison message: " + e.Code
	}
	return fmt.Sprintf("poison message (%s): %v", e.Code, e.Err)
}

// Unwrap returns the underlying error.
func (e *PoisonError) Unwrap() error { return e.Err }

// Poison returns a *PoisonError: a handler returns it (possibly wrapped) for
// an event that cannot be decoded or validated.
func Poison(code string, err error) error {
	return &PoisonError{Code: code, Err: err}
}

// TransientError marks a failure that is not the message's: a dependency
// is down, slow or refusing calls for now (see Transient).
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *TransientError) Unwrap() error { return e.Err }

// Transient marks err as a failure of a dependency, not of the message. The
// consumer then holds the message instead of giving it back: it keeps the
// lease, waits (a back-off, then the Gate) and calls the handler again, for
// up to Config.HoldFor. A message given back to SQS counts one more receive
// when it returns, and MAX_RECEIVE_COUNT receives move a valid event to the
// dead-letter queue; an outage must not do that. On shutdown a held message
// is released at once. Transient(nil) is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
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
