// Package breaker is the circuit breaker around Weaviate, and the
// consumer's pause gate.
//
// Closed, calls go through and their outcomes are counted. The breaker
// opens after ConsecutiveFailures failures in a row, or when at least
// MinCalls calls in the last Window failed at FailureRatio or more, or at
// once on one failure that Config.Lasting picks out: a lasting fault such as
// a refused API key or a read-only shard, which fails every such call until
// someone changes something, and which successful calls the fault does not
// touch (reads of a read-only shard) would otherwise keep from counting up.
// Open, every call fails at once with an *OpenError (which unwraps to the
// failure that opened it), and Wait blocks, so the consumer stops receiving
// messages it could only fail. After OpenFor the breaker is half-open: with
// a Config.Check it first checks the dependency with that one cheap call (in
// whichever Wait or Allow comes first), and Wait stays shut and calls are
// refused until the check succeeds; a failed check opens the breaker again.
// Then Wait returns, and the next call is a probe (the only call let through
// until it ends). A successful probe closes the breaker; a failed one opens
// it again. Each failed check or probe doubles the open period (up to
// MaxOpenFor).
//
// The breaker cannot be wedged: Do and Call report a call that panics (as an
// outcome that says nothing about the dependency, and the panic goes on), a
// probe that does not report within ProbeTimeout counts as failed, and a
// Check that panics is a failed check.
//
// What counts as a failure: any error, including timeouts (a deadline that
// passed), except a cancellation by the caller itself — a call whose context
// was cancelled (context.Canceled) says nothing about Weaviate's health; for
// example a muted chat cancels its history queries. Config.IsFailure may
// narrow it further.
//
// Status says what the breaker is doing and why (the cause, the reason, since
// when); Config.Paused hears how long each open and half-open period lasted.
// Each state change is logged once, at warn when the breaker opens and at
// info otherwise. Time comes from an injected Clock, so tests need no sleeps.
package breaker
