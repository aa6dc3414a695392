package leakcheck

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func blocked(release <-chan struct{}) { <-release }

// TestFindWaitsForGoroutinesThatEnd: a goroutine that ends within the grace
// is not reported; one still blocked when it has passed is, by name.
func TestFindWaitsForGoroutinesThatEnd(t *testing.T) {
	before := goleak.IgnoreCurrent()

	release := make(chan struct{})
	go blocked(release)
	time.AfterFunc(600*time.Millisecond, func() { close(release) }) // past goleak's own ~0.4 s
	start := time.Now()
	if err := find(time.Minute, before); err != nil {
		t.Fatalf("a goroutine that ended after %v was reported: %v", time.Since(start), err)
	}

	stuck := make(chan struct{})
	defer close(stuck)
	go blocked(stuck)
	start = time.Now()
	err := find(time.Second, before)
	if err == nil {
		t.Fatal("a goroutine blocked past the grace was not reported")
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("reported after %v, before the grace of 1s", took)
	}
	t.Log(err)
}
