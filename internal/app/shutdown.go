package app

import "time"

// Fixed slices of the shutdown budget, after SHUTDOWN_TIMEOUT.
const (
	// AckTimeout bounds, after SHUTDOWN_TIMEOUT, the wait for handlers the
	// bound cancelled and for the consumer's last deletes and releases.
	AckTimeout = 3 * time.Second
	// CloseTimeout bounds what the publisher and the pool still hold once
	// the consumer is done (normally nothing: every result was published
	// inside its handler).
	CloseTimeout = 2 * time.Second
	// FlushTimeout bounds the last PutMetricData calls (and the last trace
	// export), made once nothing records any more.
	FlushTimeout = 3 * time.Second
)

// Shutdown is the one shutdown deadline, derived from SHUTDOWN_TIMEOUT and
// split among the stages that need it, in order from SIGTERM:
//
//	Drain  running handlers finish (and a long poll in flight returns)
//	Acks   handlers cut off by Drain return; the last deletes and releases
//	Close  the publisher and the pool finish what they hold
//	Flush  the last metrics (and traces) go out
//
// Each stage ends at its own offset from SIGTERM, whatever the stages before
// it took, so the worker exits by Total at the latest: ECS's stopTimeout
// must be above it (deploy/ecs/task-definition.json is checked by a test).
type Shutdown struct {
	Drain, Acks, Close, Flush time.Duration
}

// ShutdownBudget is the budget for SHUTDOWN_TIMEOUT d.
func ShutdownBudget(d time.Duration) Shutdown {
	return Shutdown{Drain: max(d, 0), Acks: AckTimeout, Close: CloseTimeout, Flush: FlushTimeout}
}

// Total is the longest a worker takes from SIGTERM to its exit.
func (s Shutdown) Total() time.Duration { return s.Drain + s.Acks + s.Close + s.Flush }

// flushBy is when the last trace export started at now must end: within
// Flush of its start, as the last PutMetricData, and by Total.
func (s Shutdown) flushBy(stop, now time.Time) time.Time {
	if end := stop.Add(s.Total()); end.Before(now.Add(s.Flush)) {
		return end
	}
	return now.Add(s.Flush)
}

// closeBy is when, counted from the stop, the publisher and the pool must
// be closed.
func (s Shutdown) closeBy(stop time.Time) time.Time { return stop.Add(s.Drain + s.Acks + s.Close) }
