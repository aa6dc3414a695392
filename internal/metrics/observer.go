package metrics

import "time"

// The consumer's events (consumer.Observer in ARCHITECTURE.md's seams), so
// the worker can hand the aggregator to the consumer as it is. Like Duration
// and Count, they never block, and do nothing on a nil Aggregator.

// MessageReceived records a message's queue wait (queue_wait_duration).
func (a *Aggregator) MessageReceived(queueWait time.Duration) {
	a.Duration(QueueWaitDuration, "", queueWait)
}

// MessageRejected counts an invalid event moved to the dead-letter queue
// (messages_rejected).
func (a *Aggregator) MessageRejected() { a.Count(MessagesRejected, "", 1) }

// MessageFailed counts a message left for retry (messages_failed).
func (a *Aggregator) MessageFailed() { a.Count(MessagesFailed, "", 1) }
