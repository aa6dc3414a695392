// Package slots is the consumer's bound on messages in flight: a counting
// semaphore from which a receiver takes room for a batch before it polls
// (at least what makes a poll worth it, at most a batch) and to which each
// message gives its slot back once it is settled.
package slots

import (
	"context"
	"sync"
)

// Slots counts the room left under a bound. It is safe for concurrent use.
type Slots struct {
	mu   sync.Mutex
	free int
	wake chan struct{} // closed (and replaced) when room is given back
}

// New returns n free slots.
func New(n int) *Slots { return &Slots{free: n, wake: make(chan struct{})} }

// Acquire waits until at least least slots are free, then takes up to
// most. It returns how many it took, or ctx's error.
func (s *Slots) Acquire(ctx context.Context, least, most int) (int, error) {
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

// Release gives n slots back.
func (s *Slots) Release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}
