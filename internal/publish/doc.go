// Package publish sends results to the response queue with
// SendMessageBatch, filling batches across messages.
//
// Many handlers call Publish at once; each call blocks until SQS accepted
// that one result or failed it. A batch is sent when it holds 10 entries,
// when the next entry would take it past SQS's 256 KiB batch limit, or
// when it is ripe (internal/batcher): at once when the publisher was quiet
// (no result for Linger before it), else Linger (5 ms by default) after its
// first entry arrived. While every sender is busy, results gather into the
// next batch (group commit).
//
// So an idle worker's result goes at once: a lone result waiting for
// company it does not get only adds to what its user waits for. Why 5 ms
// under load: it is about the time of one SendMessageBatch round trip
// within a region, so an entry never waits longer for company than a call
// of its own would take. Under load, when results arrive every few hundred
// microseconds, batches fill to 10 long before the bound and a tenth of the
// calls are made.
//
// On a FIFO queue (a name ending in .fifo) each entry has MessageGroupId =
// chat_id and MessageDeduplicationId = event_id, and at most one entry per
// chat is in flight at a time: a later result of the same chat waits until
// the earlier one is accepted or failed, so results of a chat leave in the
// order Publish was called. Every entry carries the message attributes
// event_id, chat_id and route (String), and the W3C traceparent (and
// tracestate) of the caller's span (internal/tracing).
//
// Batches are formed by internal/batcher and sent by internal/sqsbatch,
// the worker's one SQS batch mechanism: the Failed list of every answer is
// read per entry; an entry SQS refused for the sender's fault fails its own
// Publish call (a *sqsbatch.Error that is not transient) and no other.
// Entries SQS failed on its side, entries its answer did not mention, and
// whole calls that failed transiently (throttling, 5xx, a connection reset or
// refused, an attempt timeout) are sent again under one back-off policy, for
// as long as the entry's caller still waits (its context), at most
// MaxAttempts times. On a FIFO queue the chat order is kept by
// internal/fifo, the sequencer the consumer uses too.
//
// Close stops accepting results, sends what is pending and waits for the
// calls in flight, on a context of its own that outlives receiving.
package publish
