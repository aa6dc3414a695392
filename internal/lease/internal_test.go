package lease

import (
	"testing"
	"time"
)

// TestTwelveHourCap: no extension goes past SQS's 12-hour cap counted from
// the receipt: near it the extension is shortened, at it there is none and
// the lease runs out at its deadline.
func TestTwelveHourCap(t *testing.T) {
	t.Parallel()
	k, err := New(nil, Config{VisibilityTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l := k.Hold("r-1", start, nil)
	k.mu.Lock()
	l.deadline = start.Add(MaxVisibility)
	k.mu.Unlock()

	due, _ := k.due(start.Add(MaxVisibility - 10*time.Second))
	if len(due) != 1 || due[0].vis != 10*time.Second {
		t.Fatalf("10s before the cap: extensions %+v, want one of 10s", due)
	}
	k.mu.Lock()
	l.extending = false
	l.next = start.Add(MaxVisibility - 500*time.Millisecond)
	k.heap.Push(l)
	k.mu.Unlock()
	due, wait := k.due(start.Add(MaxVisibility - 500*time.Millisecond))
	if len(due) != 0 || wait != 0 || l.next != l.deadline {
		t.Errorf("at the cap: extensions %+v, next %v; want none, and the deadline next", due, l.next.Sub(start))
	}
}
