// Package event defines chatprep's two wire formats — the chat event read from
// the input queue and the result written to the response queue — and the one
// decoder that validates events.
//
// The worker, `worker enqueue` and the tests all decode events through Decode,
// so an event is valid in exactly one sense everywhere. A rejected event comes
// back as an *Invalid error whose Code is what the dead-letter queue's
// `error_code` message attribute carries.
package event
