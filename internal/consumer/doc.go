// Package consumer turns an SQS queue into a bounded stream of handler
// calls: long polls, backpressure, a lease heartbeat, batched deletes, the
// dead-letter queue for poison messages, FIFO group order and a graceful
// drain. It knows nothing of what a message means: the caller's Handler
// does the work.
//
// # Flow
//
// Config.Receivers long-poll loops feed one flow of work. A receiver first
// takes room under Config.MaxInFlight (messages received and not yet
// settled, across all receivers) and asks for at most that many
// (MaxNumberOfMessages = min(10, room)); with too little room it does not
// poll at all, so no message waits in memory for a slot while its
// visibility timeout runs. Before each poll it waits on Config.Gate, the
// pause signal (a circuit breaker that is open).
//
// Received messages start at once, up to Config.Concurrency handler calls at
// a time. On a FIFO queue the messages of one group (one chat) are handled
// strictly one after another in the order received, different groups in
// parallel.
//
// # Outcomes
//
//   - nil: the message is deleted with DeleteMessageBatch (up to 10 per call,
//     sent when full or after Config.FlushInterval). Failed entries are
//     retried or reported (logged and counted in Stats.AckErrors), never
//     ignored.
//   - an error: the message is not deleted; its visibility is set to a
//     back-off that grows with its ApproximateReceiveCount (with jitter,
//     capped), after which SQS delivers it again (and its redrive policy
//     eventually moves it to the dead-letter queue). On a FIFO queue the
//     rest of that group's received messages are released at once, so the
//     group neither runs out of order nor stalls.
//   - an error wrapping *PoisonError (Poison): the untouched body is sent to
//     the dead-letter queue with message attributes error_code and error,
//     and only then deleted from the input queue, so it is never lost.
//   - a panic is that message's error, with its stack.
//
// # Leases
//
// The visibility timeout is a lease. One heartbeat, ordered by deadline,
// extends every in-flight message's lease a little before it runs out
// (ChangeMessageVisibilityBatch for all due about together), never past
// SQS's 12-hour cap, and stops for a message before its delete or release
// is sent, so the two never race. If a lease is lost (the receipt handle is
// refused, or it could not be extended in time), the handler's context is
// cancelled with ErrLeaseLost and nothing is deleted: another worker has
// the message.
//
// # Shutdown
//
// Run consumes until its context is cancelled (SIGTERM). Then it stops
// receiving at once, releases every received-but-unstarted message with
// visibility 0 (also any a long poll returns after the stop), lets running
// handlers finish within Config.ShutdownTimeout while still extending their
// leases, cancels the rest (ErrShutdownTimeout; their messages are
// released), flushes the pending deletes and returns nil. Handler contexts
// are not derived from Run's context: SIGTERM alone does not cancel them.
//
// # Errors from SQS
//
// Transient errors (throttling, 5xx, connection resets) are retried by the
// SDK and then with the consumer's own back-off and jitter; the receive
// loops never spin hot and never end before Run's context does. Errors are
// classified with errors.As on the SDK's types and smithy.APIError, never by
// their text.
//
// # Metrics
//
// Stats returns the consumer's counters (atomic, cheap); an Observer gets
// the received, rejected and failed events for the metrics aggregator.
package consumer
