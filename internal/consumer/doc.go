// Package consumer turns an SQS queue into a bounded stream of handler
// calls: long polls under one in-flight bound, the messages' leases kept by
// one heartbeat, FIFO group order, batched acknowledgements and a graceful
// drain. It knows nothing of what a message means, nor of dead-letter
// queues or retries in place: the handler chain (internal/handler,
// internal/middleware) does that.
//
// # Flow
//
// Config.Receivers long-poll loops feed one flow of work. A receiver first
// takes room under Config.MaxInFlight (messages received and not yet
// settled, across all receivers) and asks for at most that many
// (MaxNumberOfMessages = min(10, room)); with too little room it does not
// poll at all, so no message waits in memory for a slot while its
// visibility timeout runs. Before each poll it waits on Config.Gate, the
// pause signal (a circuit breaker that is open, or a dependency not reached
// yet). The first poll that succeeds calls Config.Reached (readiness);
// until then polls wait at most FirstWaitTime.
//
// Each received message gets a lease (internal/lease), extended by the one
// heartbeat while the message waits or runs. Messages start at once, up to
// Config.Concurrency handler calls at a time. On a FIFO queue the messages
// of one group are handled strictly one after another in the order
// received (internal/fifo), different groups in parallel.
//
// # Outcomes
//
//   - nil: the message is deleted (DeleteMessageBatch, up to ten per call,
//     within Config.FlushInterval; at once when the consumer was quiet).
//   - an error: the message is given back with a visibility back-off that
//     grows with its ApproximateReceiveCount (jittered, capped), after which
//     SQS delivers it again, and its redrive policy eventually moves it to
//     the dead-letter queue. On shutdown a transient failure (see
//     handler.IsTransient) is given back at once instead. On a FIFO queue the
//     rest of the failed message's group is released at once, so the group
//     neither runs out of order nor stalls.
//   - a lost lease: the handler's context is cancelled with ErrLeaseLost
//     and nothing is acknowledged: another worker has the message.
//
// Acknowledgements go through internal/sqsbatch (outcome per entry,
// retries under one back-off) and internal/batcher (lingering under load).
//
// # Shutdown
//
// Run consumes until its context is cancelled (SIGTERM). Then it starts no
// new poll, and finishes what it has: the messages received (running or
// waiting) and those a long poll in flight brings are handled within
// Config.ShutdownTimeout, their leases still extended. A poll in flight is
// not cancelled, because SQS can deliver into a poll whose request was
// cancelled, and those messages would stay invisible for the visibility
// timeout (on a FIFO queue blocking their chats); each poll's wait is kept
// within the drain (Config.pollWait) instead. A message finished in the
// drain costs no redelivery and no receive towards MAX_RECEIVE_COUNT. When
// the bound runs out, messages still waiting are released (visibility 0)
// and running handlers are cancelled (ErrShutdownTimeout; their messages are
// released too). The acknowledgements are flushed and Run returns. Handler
// contexts are not derived from Run's context: SIGTERM alone does not cancel
// them.
package consumer
