package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
)

// jaegerURLVar is the variable devstack up --tracing writes the Jaeger
// query API's URL to, in the environment file; devstack trace reads it.
const jaegerURLVar = "DEVSTACK_JAEGER_URL"

// traceFromResults reads the first line of `worker results --attributes`
// from r and returns its result's traceparent.
func traceFromResults(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if len(bytes.TrimSpace(line)) == 0 {
		if err == nil || err == io.EOF {
			return "", errors.New("trace -: no result on stdin (worker results --attributes printed none: none came within its --wait)")
		}
		return "", fmt.Errorf("trace -: read stdin: %w", err)
	}
	var l struct {
		Attributes map[string]any `json:"attributes"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return "", fmt.Errorf("trace -: stdin is not worker results --attributes: %w", err)
	}
	tp, _ := l.Attributes["traceparent"].(string)
	if tp == "" {
		return "", errors.New("trace -: the result has no traceparent attribute (was stdin worker results --attributes?)")
	}
	return tp, nil
}

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
