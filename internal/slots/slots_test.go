package slots_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chatprep/chatprep/internal/slots"
)

func TestSlots(t *testing.T) {
	t.Parallel()
	s := slots.New(12)
	if n, _ := s.Acquire(t.Context(), 5, 10); n != 10 {
		t.Fatalf("took %d, want 10", n)
	}
	got := make(chan int)
	go func() {
		n, _ := s.Acquire(context.Background(), 5, 10)
		got <- n
	}()
	s.Release(2) // 4 free: still too few for a batch of 5
	select {
	case n := <-got:
		t.Fatalf("took %d with only 4 free", n)
	default:
	}
	s.Release(3)
	if n := <-got; n != 7 {
		t.Errorf("took %d, want all 7 free", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Acquire(ctx, 1, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire on a cancelled context: %v", err)
	}
}
