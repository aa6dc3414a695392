package fifo_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/chatprep/chatprep/internal/fifo"
)

func TestOrderPerGroup(t *testing.T) {
	t.Parallel()
	var s fifo.Sequencer[string]
	for _, it := range []struct {
		group, item string
		head        bool
	}{{"a", "a1", true}, {"b", "b1", true}, {"a", "a2", false}, {"a", "a3", false}} {
		if got := s.Add(it.group, it.item); got != it.head {
			t.Errorf("Add(%s, %s) = %v, want %v", it.group, it.item, got, it.head)
		}
	}
	if next, ok := s.Next("a"); !ok || next != "a2" {
		t.Errorf("Next(a) = %q, %v; want a2", next, ok)
	}
	if next, ok := s.Next("b"); ok {
		t.Errorf("Next(b) = %q: b has nothing waiting", next)
	}
	if s.Add("b", "b2") != true {
		t.Error("b2 after b's last item ended is not the head")
	}
	if next, ok := s.Next("a"); !ok || next != "a3" {
		t.Errorf("Next(a) = %q, %v; want a3", next, ok)
	}
	if _, ok := s.Next("a"); ok || s.Len() != 1 {
		t.Errorf("a not ended (Len %d)", s.Len())
	}
}

func TestBreakAndDrain(t *testing.T) {
	t.Parallel()
	var s fifo.Sequencer[int]
	for i := range 4 {
		s.Add("g", i)
		s.Add("h", 10+i)
	}
	if rest := s.Break("g"); !slices.Equal(rest, []int{1, 2, 3}) {
		t.Errorf("Break(g) = %v, want [1 2 3]", rest)
	}
	if !s.Add("g", 4) {
		t.Error("after a break the group starts over")
	}
	got := s.Drain()
	slices.Sort(got)
	if !slices.Equal(got, []int{11, 12, 13}) {
		t.Errorf("Drain = %v, want h's waiting items", got)
	}
	if _, ok := s.Next("h"); ok {
		t.Error("a drained group still has items")
	}
	if rest := s.Break("g"); rest != nil {
		t.Errorf("Break of a lone head = %v", rest)
	}
	if s.Len() != 0 {
		t.Errorf("Len %d after every head ended", s.Len())
	}
}

func TestWaiting(t *testing.T) {
	t.Parallel()
	var s fifo.Sequencer[string]
	if w := s.Waiting("a"); w != nil {
		t.Errorf("Waiting on an empty sequencer = %v", w)
	}
	s.Add("a", "a1")
	if w := s.Waiting("a"); w != nil {
		t.Errorf("Waiting behind a lone head = %v", w)
	}
	s.Add("a", "a2")
	s.Add("b", "b1")
	s.Add("a", "a3")
	w := s.Waiting("a")
	if !slices.Equal(w, []string{"a2", "a3"}) {
		t.Fatalf("Waiting(a) = %v, want a2 a3", w)
	}
	w[0] = "changed"
	if next, _ := s.Next("a"); next != "a2" {
		t.Errorf("Waiting's slice is not a copy: Next = %q", next)
	}
	if w := s.Waiting("a"); !slices.Equal(w, []string{"a3"}) {
		t.Errorf("after Next, Waiting(a) = %v", w)
	}
}

// TestBehind: the function lists what waits behind the group's head now,
// under the lock, each as f makes it; nothing for an unknown group.
func TestBehind(t *testing.T) {
	t.Parallel()
	var (
		mu sync.Mutex
		s  fifo.Sequencer[int]
	)
	s.Add("a", 1)
	s.Add("a", 2)
	s.Add("a", 3)
	behind := fifo.Behind(&mu, &s, "a", func(i int) string { return fmt.Sprint("m", i) })
	if got := behind(); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Errorf("behind = %v, want m2 m3", got)
	}
	mu.Lock()
	s.Next("a")
	mu.Unlock()
	if got := behind(); !slices.Equal(got, []string{"m3"}) {
		t.Errorf("after Next, behind = %v, want m3", got)
	}
	if got := fifo.Behind(&mu, &s, "none", func(i int) string { return "" })(); got != nil {
		t.Errorf("an unknown group: %v", got)
	}
}
