package pool_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatprep/chatprep/internal/pool"
)

// One message's tasks run in parallel on the shared pool; the message waits
// on its own goroutine and reads a task's output only when the task
// succeeded.
func Example() {
	p, err := pool.New(pool.Config{Size: 4, TaskTimeout: time.Second})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background()) //nolint:errcheck // the example's tasks are done

	ctx := context.Background()
	var history []string
	historyTask := p.Go(ctx, func(context.Context) error {
		history = []string{"hello", "how are you?"}
		return nil
	})
	mutedTask := p.Go(ctx, func(context.Context) error {
		return fmt.Errorf("muted state: %w", context.DeadlineExceeded)
	})

	if err := historyTask.Wait(ctx); err == nil {
		fmt.Println("history:", history)
	}
	if err := mutedTask.Wait(ctx); err != nil {
		fmt.Println("muted failed:", err)
	}
	// Output:
	// history: [hello how are you?]
	// muted failed: muted state: context deadline exceeded
}
