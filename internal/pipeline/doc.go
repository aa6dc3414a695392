// Package pipeline is the preprocessing itself: it decodes each chat
// event, runs a user message's tasks in parallel on the shared pool,
// combines their answers into the result, and publishes it. It is a
// handler.Handler and knows nothing of the consumer, the circuit breaker or
// the dead-letter queue: the worker wraps it in the middlewares
// (internal/middleware) that do.
//
// For a user message the handler gathers, then assembles, then publishes
// (the shape of River's jobexecutor: execute, then report).
//
// Gather (gather.go): the handler submits, at once, its tasks to the pool,
// each bounded by TASK_TIMEOUT: the chat's recent messages (both roles in
// one search, 2×HISTORY_LIMIT+1 of them), the relevance search and then, in
// the same task, its hits' neighbours (Following; one more round trip,
// since it needs the hits), the chat's ERP references, the muted state,
// and storing the message.
//
// Assemble (assemble.go) is a pure function from the tasks' answers to the
// result's context, table-tested without a pool or a store. In the
// contract's terms:
//
//   - history is recent messages oldest first, at most HISTORY_LIMIT per
//     role, never the event itself (the concurrent store task may already
//     have written it, hence the +1);
//   - relevant is passages, best first: a hit and the RELEVANCE_NEIGHBOURS
//     messages after it ("with"), at most RELEVANCE_LIMIT hits, none already
//     given, a hit repeating the words of a better hit or of recent history
//     after all the others; the store is asked for 2 × (RELEVANCE_LIMIT +
//     HISTORY_LIMIT) hits (Candidates), enough to skip all of history and
//     the copies;
//   - the budget: the burst and the last exchange always; then recent
//     history up to a tenth of CONTEXT_TOKEN_BUDGET, passages, and older
//     recent history while it fits (see Assemble); tokens are the sums;
//   - burst from history; superseded_by from the messages of the chat that
//     the consumer has already received behind this one
//     (handler.Message.Behind: what it holds, never a wait);
//   - references: the event's own text, the history window's texts and the
//     store's (messages stored with references), newest mention first;
//   - the route: a known route_hint, else the first matching rule, else the
//     route of the newest rule-matched user message of the last ROUTE_CARRY
//     in history, else the default;
//   - a retrieval task that fails or times out leaves its part empty and is
//     listed in degraded (message_history, relevance_search, references,
//     muted_status) with its error, such as "timeout after 2s"; a failed
//     muted lookup counts the chat as not muted;
//   - a muted chat (muted at the message's sent_at) cancels the retrieval
//     tasks as soon as the muted state is known and gets muted: true with
//     empty history, relevant, burst and references; its message is still
//     stored;
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
// event is decoded, then route, muted, degraded count and tasks, burst
// (its size), tokens (history and relevant), superseded_by when set, and
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
