// Package breaker is the circuit breaker around Weaviate, and the
// consumer's pause gate.
//
// Closed, calls go through and their outcomes are counted. The breaker
// opens after ConsecutiveFailures failures in a row, or when at least
// MinCalls calls in the last Window failed at FailureRatio or more. Open,
// every call fails at once with an *OpenError, and Wait blocks, so the
// consumer stops receiving messages it could only fail. After OpenFor the
// breaker is half-open: Wait returns, and the next call is a probe (the only
// call let through until it ends). A successful probe closes the breaker; a
// failed one opens it again for twice as long (up to MaxOpenFor).
//
// What counts as a failure: any error, including timeouts (a deadline that
// passed), except a cancellation by the caller itself — a call whose context
// was cancelled (context.Canceled) says nothing about Weaviate's health; for
// example a muted chat cancels its history queries. Config.IsFailure may
// narrow it further.
//
// Each state change is logged once, at warn when the breaker opens and at
// info otherwise. Time comes from an injected Clock, so tests need no sleeps.
package breaker
