// Package fifo keeps the order of FIFO message groups: the items of one
// group (one chat) go one at a time, in the order they were added, while
// different groups go in parallel. The consumer sequences received
// messages with it, the publisher results.
package fifo

import "sync"

// Sequencer orders items by group. Per group, the first item added is the
// head, which may go; the others wait behind it in order. A Sequencer is not
// safe for concurrent use: its owner serializes the calls (under its own
// lock, or on one goroutine). The zero value is ready to use.
type Sequencer[T any] struct {
	groups map[string][]T // group → its head, then those waiting
}

// Add puts item at the end of its group and reports whether it is the
// group's head: whether it may go now.
func (s *Sequencer[T]) Add(group string, item T) bool {
	if s.groups == nil {
		s.groups = map[string][]T{}
	}
	q := s.groups[group]
	s.groups[group] = append(q, item)
	return len(q) == 0
}

// Next ends the group's head and returns the item behind it, which is the
// head now and may go; false when the group has nothing waiting.
func (s *Sequencer[T]) Next(group string) (T, bool) {
	q := s.groups[group]
	var zero T
	if len(q) <= 1 {
		delete(s.groups, group)
		return zero, false
	}
	q[0] = zero
	s.groups[group] = q[1:]
	return q[1], true
}

// Waiting returns the items waiting behind the group's head, in order: a
// copy, which the caller may keep.
func (s *Sequencer[T]) Waiting(group string) []T {
	q := s.groups[group]
	if len(q) <= 1 {
		return nil
	}
	return append([]T(nil), q[1:]...)
}

// Behind returns a function that lists, holding mu (the lock s's owner
// serializes its calls with), what waits behind group's head in s, each as
// f makes it: for a handler to see what of its group was already received
// (handler.Message.Behind). The list is empty when nothing waits.
func Behind[T any](mu sync.Locker, s *Sequencer[T], group string, f func(T) string) func() []string {
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, it := range s.Waiting(group) {
			out = append(out, f(it))
		}
		return out
	}
}

// Break ends the group's head and takes out every item waiting behind it,
// in order: after a failure the group's order cannot be kept, so none of
// them may go.
func (s *Sequencer[T]) Break(group string) []T {
	q := s.groups[group]
	delete(s.groups, group)
	if len(q) <= 1 {
		return nil
	}
	return q[1:]
}

// Drain takes out every item waiting behind a head, for a shutdown. The
// heads stay: Next and Break still end them (and find nothing behind).
func (s *Sequencer[T]) Drain() []T {
	var out []T
	var zero T
	for g, q := range s.groups {
		out = append(out, q[1:]...)
		for i := 1; i < len(q); i++ {
			q[i] = zero
		}
		s.groups[g] = q[:1]
	}
	return out
}

// Len is the number of groups with a head.
func (s *Sequencer[T]) Len() int { return len(s.groups) }
