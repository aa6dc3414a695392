// Package sqsbatch is chatprep's one way to make SQS batch calls:
// SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch.
// Publishing results, dead-letter moves, redrives and `worker enqueue` send
// through it; the consumer's deletes, visibility back-offs, releases and
// lease extensions go through it.
//
// A call takes any number of entries and answers with one outcome per entry,
// in order: nil once SQS accepted it, or an *Error. Entries go at most
// MaxEntries (and, for sends, MaxBytes) a call. Each answer's Failed list is
// read entry by entry:
//
//   - an entry SQS refused for the sender's fault (other than throttling)
//     fails at once: sending it again cannot succeed;
//   - an entry SQS failed on its side, or that its answer mentions in
//     neither Successful nor Failed, is sent again;
//   - a whole call that failed is made again when Retryable says its error
//     may pass (throttling, 5xx, a connection refused or reset, an attempt's
//     timeout); otherwise every entry of it fails.
//
// Retries wait under one back-off policy (internal/backoff), at most
// Config.MaxAttempts calls per entry, and never past the caller's context;
// the calls themselves make no SDK retries. Errors are classified by their
// types (errors.As), never by their text.
//
// Order on FIFO queues: a send's chunks go one after another, so entries
// reach the queue in the caller's order, with one exception SQS gives no
// way around. When SQS fails one entry of a call on its side and accepts
// later entries of the same message group, the failed one, sent again,
// lands after them. Callers that must keep a group's order under that
// (the publisher) put at most one entry per group in flight; enqueue and
// the redrive accept it, as SQS reports such failures rarely and only for
// its own errors (not throttling, which fails the whole call).
package sqsbatch
