package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
)

// traceWait bounds the wait for a trace Jaeger does not know yet: the
// worker sends spans in batches, every 5 s by default
// (OTEL_BSP_SCHEDULE_DELAY).
const traceWait = 15 * time.Second

// waterfallWidth is the columns of the time line.
const waterfallWidth = 48

// drawTrace reads trace id (a trace id or a traceparent) from the Jaeger
// query API at queryURL, waiting for it a little, and draws it on w.
func drawTrace(ctx context.Context, w io.Writer, queryURL, id string) error {
	ctx, cancel := context.WithTimeout(ctx, traceWait)
	defer cancel()
	for {
		t, err := devstack.Trace(ctx, queryURL, id)
		if err == nil {
			t.Waterfall(w, waterfallWidth)
			return nil
		}
		if !errors.Is(err, devstack.ErrNoTrace) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %v (a worker sends its spans every few seconds, and all at its stop)", err, traceWait)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
