package app

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// TestShutdownStages: the stages run in order; each stage's steps share a
// deadline at most its slice after the stage starts and never past the sum
// of the slices up to it, counted from the stop; a step that fails is
// logged and the next still runs; the consumer's stages (no steps) only
// take their slice of the budget.
func TestShutdownStages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		drainTook   time.Duration // from the stop to the consumer's return
		closeTakes  time.Duration
		wantClose   time.Duration // deadlines, from the consumer's return
		wantFlush   time.Duration
		wantWarning bool
	}{
		{name: "fast drain: each stage its own slice", drainTook: 2 * time.Second,
			wantClose: 2 * time.Second, wantFlush: 3 * time.Second},
		{name: "drain used its bound and the acks most of theirs", drainTook: 12500 * time.Millisecond,
			wantClose: 2 * time.Second, wantFlush: 3 * time.Second},
		{name: "late: close ends at its offset from the stop", drainTook: 14500 * time.Millisecond,
			wantClose: 500 * time.Millisecond, wantFlush: 3 * time.Second},
		{name: "a close step overran: flush still ends by the total", drainTook: 14 * time.Second, closeTakes: time.Second + 800*time.Millisecond,
			wantClose: time.Second, wantFlush: 4 * time.Second, wantWarning: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				w := &Worker{log: zerolog.New(&logs), budget: ShutdownBudget(10 * time.Second)}
				start := time.Now()
				stop := start.Add(-tc.drainTook)
				var order []string
				deadlines := map[string]time.Duration{}
				rec := func(name string, took time.Duration, err error) step {
					return step{warn: name + " failed", run: func(ctx context.Context) error {
						order = append(order, name)
						d, _ := ctx.Deadline()
						deadlines[name] = d.Sub(start)
						time.Sleep(took) // a step may overrun its deadline
						if ctx.Err() != nil {
							return ctx.Err()
						}
						return err
					}}
				}
				w.shutdown(t.Context(), stop, []stage{
					{name: "drain", slice: w.budget.Drain},
					{name: "acks", slice: w.budget.Acks},
					{name: "close", slice: w.budget.Close, steps: []step{rec("publisher", tc.closeTakes, nil), rec("pool", 0, nil)}},
					{name: "flush", slice: w.budget.Flush, steps: []step{rec("traces", 0, errors.New("2 spans lost")), rec("health", 0, nil)}},
				})
				if got := strings.Join(order, " "); got != "publisher pool traces health" {
					t.Errorf("order %q", got)
				}
				if deadlines["publisher"] != tc.wantClose || deadlines["pool"] != tc.wantClose {
					t.Errorf("close deadlines %v, %v after the consumer returned, want %v", deadlines["publisher"], deadlines["pool"], tc.wantClose)
				}
				if tc.wantWarning != strings.Contains(logs.String(), "publisher failed") {
					t.Errorf("logs %s: want a warning for the publisher %v", logs.String(), tc.wantWarning)
				}
				if got := deadlines["traces"]; got != tc.wantFlush || deadlines["health"] != got {
					t.Errorf("flush deadline %v after the consumer returned (it started at %v), want %v", got, tc.closeTakes, tc.wantFlush)
				}
				if !strings.Contains(logs.String(), `"stage":"flush"`) || !strings.Contains(logs.String(), "traces failed") {
					t.Errorf("logs %s: want the failed trace flush logged with its stage", logs.String())
				}
				if total := stop.Add(w.budget.Total()); time.Now().After(total) {
					t.Errorf("the shutdown ended %v after its total", time.Since(total))
				}
			})
		})
	}
}
