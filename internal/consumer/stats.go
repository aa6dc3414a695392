package consumer

import "sync/atomic"

// Stats is a snapshot of a Consumer's counters, kept since New.
type Stats struct {
	Received   int64 // messages received
	Finished   int64 // handler returned nil
	Failed     int64 // handler returned an error; given back
	Deleted    int64 // messages deleted from the input queue
	Released   int64 // messages given back with visibility 0 (shutdown, FIFO group release)
	Extended   int64 // lease extensions that succeeded
	LeasesLost int64 // leases lost: the handler's context was cancelled
	// LostDeleted counts messages whose handler finished although their
	// lease was lost, deleted anyway (in Deleted too); LostDeleteFailed
	// those whose delete SQS refused then (in AckErrors too: another
	// worker had received the message, or its receipt had expired).
	LostDeleted, LostDeleteFailed int64

	// AckErrors counts deletes and visibility changes given up after
	// retries (each is logged); the message then comes back after its
	// visibility timeout.
	AckErrors int64
	// ReceiveErrors counts failed ReceiveMessage calls (after the SDK's own
	// retries), each followed by a back-off.
	ReceiveErrors int64
	// InFlight is the number of messages received and not yet settled.
	InFlight int64

	Calls Calls // SQS calls by API
}

// Calls counts SQS calls by API, each attempt of the consumer's own retries
// included (the SDK's internal retries are not seen here).
type Calls struct {
	ReceiveMessage               int64
	DeleteMessageBatch           int64
	ChangeMessageVisibilityBatch int64
}

// Total is the sum over all APIs.
func (c Calls) Total() int64 {
	return c.ReceiveMessage + c.DeleteMessageBatch + c.ChangeMessageVisibilityBatch
}

// counters are the live, race-free counterparts of Stats.
type counters struct {
	received, finished, failed, deleted, released atomic.Int64
	ackErrors, receiveErrors, inFlight, callsRecv atomic.Int64
	lostDeleted, lostDeleteFailed                 atomic.Int64
}

// Stats returns a snapshot of the consumer's counters. It is cheap and safe
// to call at any time, from any goroutine.
func (c *Consumer) Stats() Stats {
	calls := c.queue.Calls()
	l := c.leases.Stats()
	return Stats{
		Received:         c.stats.received.Load(),
		Finished:         c.stats.finished.Load(),
		Failed:           c.stats.failed.Load(),
		Deleted:          c.stats.deleted.Load(),
		Released:         c.stats.released.Load(),
		Extended:         l.Extended,
		LeasesLost:       l.Lost,
		LostDeleted:      c.stats.lostDeleted.Load(),
		LostDeleteFailed: c.stats.lostDeleteFailed.Load(),
		AckErrors:        c.stats.ackErrors.Load(),
		ReceiveErrors:    c.stats.receiveErrors.Load(),
		InFlight:         c.stats.inFlight.Load(),
		Calls: Calls{
			ReceiveMessage:               c.stats.callsRecv.Load(),
			DeleteMessageBatch:           calls.DeleteMessageBatch,
			ChangeMessageVisibilityBatch: calls.ChangeMessageVisibilityBatch,
		},
	}
}
