// Package pipeline is the preprocessing itself: it decodes each chat
// event, runs a user message's tasks in parallel on the shared pool,
// combines their answers into the result, and publishes it. It is a
// handler.Handler and knows nothing of the consumer, the circuit breaker or
// the dead-letter queue: the worker wraps it in the middlewares
// (internal/middleware) that do.
//
// For a user message the handler submits, at once, five tasks to the pool,
// each bounded by TASK_TIMEOUT: the chat's recent user messages, its recent
// assistant messages, the relevance search, the muted state, and storing the
// message. Route detection runs inline on the handler's goroutine meanwhile:
// it is a few microseconds of CPU (about 2 ms for the largest allowed
// text), less than a pool round trip costs, it overlaps the tasks' I/O
// anyway, and inline it can never queue behind I/O tasks of other messages
// in a saturated pool or take a slot Weaviate calls need.
//
// Then, in the contract's terms:
//
//   - history is the user and assistant messages merged oldest first, never
//     the event itself; the store is asked for HISTORY_LIMIT+1 per role, so
//     that dropping the event itself (which the concurrent store task may
//     already have written) still leaves HISTORY_LIMIT;
//   - relevant is best first, none already in history, never the event
//     itself, RELEVANCE_LIMIT in all; the store is asked for
//     RELEVANCE_LIMIT + 2×HISTORY_LIMIT + 1, enough to filter all of those out;
//   - a retrieval task that fails or times out leaves its part empty and is
//     listed in degraded (user_history, assistant_history, relevance_search,
//     muted_status) with its error, such as "timeout after 2s"; a failed
//     muted lookup counts the chat as not muted;
//   - a muted chat (muted at the message's sent_at) cancels the history and
//     relevance tasks as soon as the muted state is known and gets muted:
//     true with empty history and relevant; its message is still stored;
//   - the result is published only after the message is stored: a failed
//     store returns an error (the message comes back) and nothing is
//     published; Handle returns nil only once the publisher has accepted the
//     result.
//
// An assistant message is only stored; mute and unmute set the chat's state;
// neither has a result. An event that cannot be decoded is poison
// (handler.Poison with the event package's error code).
//
// Errors are returned, never logged here, and say by their behaviour what
// they are (handler.IsTransient): the store's and the publisher's errors
// already say what was being done and are returned as they are; the pool's
// (a task's timeout, a panic) get which message they were about.
//
// Each event's one log line is written by the Log middleware from what the
// handler describes (handler.Describe): event_id and chat_id as soon as the
// event is decoded, then route, muted, degraded count and tasks and
// timings_ms (type and role for other events), never the message text. The
// handler logs only what it handles itself: a panic in a retrieval task,
// with its stack, at error.
//
// Traces (internal/tracing): the handler adds the event's attributes to the
// span in its context (the event span) and makes a child span per task,
// from its submission to its answer like its timing, with the degraded
// reason as its error; a muted chat's cancelled retrievals are marked
// cancelled, not failed.
//
// Timings: each task's timing is the wall time from the start of
// preprocessing until its answer was known (pool queueing included);
// preprocessing ends when the result is combined; total runs from the
// message's receipt until the result is handed to the publisher (the body
// cannot contain its own publish time); the log line's duration_ms and the
// handler_total_duration metric run until the publisher accepted it.
package pipeline
