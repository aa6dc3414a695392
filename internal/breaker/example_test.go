package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatprep/chatprep/internal/breaker"
)

// Calls to a failing dependency open the breaker; then calls fail fast
// with an *OpenError, and the consumer's gate (Wait) pauses receiving.
func Example() {
	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 2})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	query := func(context.Context) error { return errors.New("connection refused") }
	for range 3 {
		err := b.Do(ctx, query)
		var open *breaker.OpenError
		fmt.Println(errors.As(err, &open), err)
	}
	fmt.Println(b.State())
	// Output:
	// false connection refused
	// false connection refused
	// true weaviate circuit breaker open
	// open
}
