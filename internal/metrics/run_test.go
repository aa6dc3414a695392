package metrics_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/metrics/cwfake"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

// runAgg starts Run and returns a function that stops it and returns its
// error.
func runAgg(t *testing.T, agg *metrics.Aggregator) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// waitCtx bounds a wait on the test server.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRunFlushesPeriodicallyAndAtShutdown: Run sends on its own every
// FlushInterval, and what is recorded after its last periodic flush is sent
// by the flush it makes when its context ends, before it returns.
func TestRunFlushesPeriodicallyAndAtShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{FlushInterval: 20 * time.Millisecond})
	stop := runAgg(t, b.agg)
	w := newWant()
	record(b, w, defaultRoutes[0], func(j int) time.Duration { return time.Duration(j) * time.Millisecond }, true)
	if err := b.cw.WaitCalls(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	record(b, w, defaultRoutes[1], func(j int) time.Duration { return time.Duration(j) * time.Second }, true)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
}

// TestShutdownFlushesPending: with a flush interval that never comes, the
// only flush is the one at shutdown, and it sends everything.
func TestShutdownFlushesPending(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{FlushInterval: time.Hour})
	stop := runAgg(t, b.agg)
	w := newWant()
	for _, rt := range defaultRoutes {
		record(b, w, rt, func(j int) time.Duration { return time.Duration(j+1) * time.Millisecond }, true)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
	if n := len(b.cw.Calls()); n != 1 {
		t.Errorf("%d calls, want the one shutdown flush", n)
	}
}

// TestRunRetriesWithBackoffAndResumes: calls fail for a while; Run logs the
// failure once (rate-limited), retries sooner than the flush interval, and
// says when flushing resumed; the data arrive exact.
func TestRunRetriesWithBackoffAndResumes(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{FlushInterval: 50 * time.Millisecond, RetryMin: time.Millisecond}, noSDKRetries)
	b.cw.FailNext(4, cwtest.Unavailable())
	stop := runAgg(t, b.agg)
	w := newWant()
	record(b, w, defaultRoutes[0], func(j int) time.Duration { return time.Duration(j) * time.Millisecond }, true)
	if err := b.cw.WaitCalls(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
	if st := b.agg.Stats(); st.Failures != 4 || b.cw.Requests() != 5 {
		t.Errorf("stats %+v, %d requests; want 4 failures then success", st, b.cw.Requests())
	}
	var failed, resumed int
	for _, l := range b.logs.Lines(t) {
		switch l["message"] {
		case "metrics flush failed; data kept, retrying with back-off":
			failed++
			if l["error"] == nil || l["level"] != "warn" {
				t.Errorf("failure line %v", l)
			}
		case "metrics flushing resumed":
			resumed++
			if l["failed_flushes"] != 4.0 {
				t.Errorf("resumed line %v", l)
			}
		}
	}
	if failed != 1 || resumed != 1 {
		t.Errorf("%d failure lines, %d resumed lines; want 1 each (rate-limited)", failed, resumed)
	}
}

// TestFinalFlushIsBounded: when CloudWatch does not answer at shutdown, Run
// returns after FinalFlushTimeout with the error, and does not hang. In
// virtual time, with a CloudWatch that only holds the call: the bound is
// checked exactly.
func TestFinalFlushIsBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const bound = 100 * time.Millisecond
		var calls atomic.Int32
		hang := &cwfake.CloudWatch{PutMetricDataFunc: func(ctx context.Context, _ *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
			calls.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		agg, err := metrics.New(hang, metrics.Config{FlushInterval: time.Hour, FinalFlushTimeout: bound, SendTimeout: time.Hour, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		stop := runAgg(t, agg)
		agg.Count(metrics.MessagesProcessed, "general", 1)
		begin := time.Now()
		err = stop()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run: %v; want the final flush's deadline", err)
		}
		if d := time.Since(begin); d != bound || calls.Load() != 1 {
			t.Errorf("Run returned after %v and %d calls; want the one final call cut at %v", d, calls.Load(), bound)
		}
	})
}

// TestRunTwiceRefused: one Run per aggregator.
func TestRunTwiceRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{FlushInterval: 10 * time.Millisecond})
	stop := runAgg(t, b.agg)
	b.agg.Count(metrics.MessagesMuted, "", 1)
	if err := b.cw.WaitCalls(waitCtx(t), 1); err != nil { // only Run flushes: it is running
		t.Fatal(err)
	}
	if err := b.agg.Run(t.Context()); err == nil {
		t.Error("a second Run was not refused")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
