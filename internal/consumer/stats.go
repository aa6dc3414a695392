package consumer

import "sync/atomic"

// Stats is a snapshot of a Consumer's counters, kept since New.
type Stats struct {
	Received   int64 // messages received
	Finished   int64 // handler returned nil
	Failed     int64 // handler returned an error (or panicked); left for redelivery
	Rejected   int64 // poison messages moved to the dead-letter queue
	Deleted    int64 // messages deleted from the input queue (finished and rejected)
	Released   int64 // messages given back with visibility 0 (shutdown, FIFO group release)
	Held       int64 // handler calls retried in place after a transient failure (see Transient)
	Extended   int64 // lease extensions that succeeded
	LeasesLost int64 // leases lost: the handler's context was cancelled, nothing was deleted

	// AckErrors counts deletes, dead-letter sends and visibility changes
	// given up after retries (each is logged); the message then comes back
	// after its visibility timeout.
	AckErrors int64
	// ReceiveErrors counts failed ReceiveMessage calls (after the SDK's own
	// retries), each followed by a back-off.
	ReceiveErrors int64
	// InFlight is the number of messages received and not yet finished.
	InFlight int64

	Calls Calls // SQS calls by API
}

// Calls counts SQS calls by API, each attempt of the consumer's own retries
// included (the SDK's internal retries are not seen here).
type Calls struct {
	ReceiveMessage               int64
	DeleteMessageBatch           int64
	ChangeMessageVisibilityBatch int64
	SendMessage                  int64
}

// Total is the sum over all APIs.
func (c Calls) Total() int64 {
	return c.ReceiveMessage + c.DeleteMessageBatch + c.ChangeMessageVisibilityBatch + c.SendMessage
}

// counters are the live, race-free counterparts of Stats.
type counters struct {
	received, finished, failed, rejected, deleted, released, held, extended, leasesLost atomic.Int64
	ackErrors, receiveErrors, inFlight                                                  atomic.Int64
	callReceive, callDelete, callChange, callSend                                       atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Received:      c.received.Load(),
		Finished:      c.finished.Load(),
		Failed:        c.failed.Load(),
		Rejected:      c.rejected.Load(),
		Deleted:       c.deleted.Load(),
		Released:      c.released.Load(),
		Held:          c.held.Load(),
		Extended:      c.extended.Load(),
		LeasesLost:    c.leasesLost.Load(),
		AckErrors:     c.ackErrors.Load(),
		ReceiveErrors: c.receiveErrors.Load(),
		InFlight:      c.inFlight.Load(),
		Calls: Calls{
			ReceiveMessage:               c.callReceive.Load(),
			DeleteMessageBatch:           c.callDelete.Load(),
			ChangeMessageVisibilityBatch: c.callChange.Load(),
			SendMessage:                  c.callSend.Load(),
		},
	}
}
