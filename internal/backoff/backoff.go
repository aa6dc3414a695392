// Package backoff is chatprep's one retry back-off policy: exponential
// growth from a base, capped, with "equal jitter" (a wait drawn uniformly
// from the upper half of the current step), so that workers failing together
// do not retry together, and no retry comes sooner than half its step.
//
// Everything in the worker that waits and tries again uses it: failed SQS
// batch entries, receive errors, a message held through a dependency
// outage, a failed message's visibility back-off, metrics flushes, the
// circuit breaker's open period and enqueue's sends.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential back-off: attempt n (counting from 0) waits
// about Base·2ⁿ, at most Max.
type Policy struct {
	// Base is the first step. Required (a zero Base never waits).
	Base time.Duration
	// Max caps every step. Zero: no cap.
	Max time.Duration
	// NoJitter makes Delay exact: Step(n). For the few waits that others
	// do not share (the breaker's open period, a single process's flush).
	NoJitter bool
}

// Step is attempt's undithered step: Base·2^attempt, capped by Max.
func (p Policy) Step(attempt int) time.Duration {
	d := p.Base
	for range max(attempt, 0) {
		if p.Max > 0 && d >= p.Max/2 {
			return p.Max
		}
		if d > time.Duration(1<<62) {
			break
		}
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return d
}

// Delay is how long to wait before retry attempt+1: Step(attempt) with
// equal jitter, drawn from [Step/2, Step].
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Step(attempt)
	if p.NoJitter || d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx is done; it reports whether the whole wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
