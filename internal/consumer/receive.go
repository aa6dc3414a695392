package consumer

import (
	"context"
	"sync"
	"time"
)

// Back-off of a receiver after a failed ReceiveMessage (the SDK has already
// retried it).
const (
	receiveBackoffBase = 200 * time.Millisecond
	receiveBackoffMax  = 10 * time.Second
)

// answerSkew bounds how long before a ReceiveMessage answer arrives SQS
// took its messages (and started their visibility timeouts).
const answerSkew = time.Second

// leaseStart is when the visibility timeouts of a receive's messages began,
// at the earliest: not before the call was sent, and not more than
// answerSkew before its answer, since a long poll returns as soon as it has
// messages. Counting from the send alone would make a poll that waited
// longer than VISIBILITY_TIMEOUT - answerSkew deliver leases already run out.
func leaseStart(sent, answered time.Time) time.Time {
	if t := answered.Add(-answerSkew); t.After(sent) {
		return t
	}
	return sent
}

// receive is one long-poll loop. It asks only for as many messages as there
// is room for under MaxInFlight and does not poll while there is too little
// room, so no message waits in memory for a slot while its visibility
// timeout runs. It stops when ctx is cancelled; messages a poll returns
// after that are released at once.
func (r *run) receive(ctx context.Context, id int) {
	log := r.log.With().Int("receiver", id).Logger()
	failures := 0
	backoff := func(err error) bool {
		wait := jitter(expBackoff(receiveBackoffBase, receiveBackoffMax, failures))
		failures++
		r.c.stats.receiveErrors.Add(1)
		log.Error().Err(err).Int("failures", failures).Dur("retry_in", wait).Msg("receive failed")
		return sleep(ctx, wait)
	}
	for ctx.Err() == nil {
		n, err := r.slots.acquire(ctx, r.minBatch, MaxBatch)
		if err != nil {
			return
		}
		if g := r.cfg.Gate; g != nil {
			if err := g.Wait(ctx); err != nil {
				r.slots.release(n)
				if ctx.Err() != nil || !backoff(err) {
					return
				}
				continue
			}
		}
		start := time.Now()
		msgs, err := r.c.receiveMessages(ctx, n)
		if err != nil {
			r.slots.release(n)
			if ctx.Err() != nil || !backoff(err) {
				return
			}
			continue
		}
		failures = 0
		r.slots.release(n - len(msgs))
		if len(msgs) > 0 {
			r.accept(msgs, leaseStart(start, time.Now()), ctx.Err() != nil)
		}
	}
}

// slots counts the room left under MaxInFlight. A receiver takes room
// before it polls and gives back what the poll did not fill; a message gives
// its slot back once it is settled.
type slots struct {
	mu   sync.Mutex
	free int
	wake chan struct{} // closed (and replaced) when room is given back
}

func newSlots(n int) *slots { return &slots{free: n, wake: make(chan struct{})} }

// acquire waits until at least least slots are free, then takes up to most.
func (s *slots) acquire(ctx context.Context, least, most int) (int, error) {
	for ctx.Err() == nil {
		s.mu.Lock()
		if s.free >= least {
			n := min(s.free, most)
			s.free -= n
			s.mu.Unlock()
			return n, nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-wake:
		}
	}
	return 0, ctx.Err()
}

func (s *slots) release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}
