package consumer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/consumer/sqsfake"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/lease"
)

const testQueue = "http://localhost:4566/000000000000/in"

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{QueueURL: testQueue + ".fifo"}.WithDefaults()
	want := Config{
		QueueURL:  testQueue + ".fifo",
		Receivers: DefaultReceivers, MaxInFlight: DefaultMaxInFlight, Concurrency: DefaultMaxInFlight,
		VisibilityTimeout: DefaultVisibilityTimeout, ShutdownTimeout: DefaultShutdownTimeout,
		FinalFlushTimeout: DefaultFinalFlushTimeout, WaitTime: DefaultWaitTime, FlushInterval: DefaultFlushInterval,
		RetryBackoff: DefaultRetryBackoff, RetryBackoffMax: DefaultRetryBackoffMax,
		CallTimeout: DefaultCallTimeout,
	}
	if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := c.validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if !c.fifo() {
		t.Error("a .fifo queue is not FIFO")
	}
	if c := (Config{QueueURL: testQueue, MaxInFlight: 7}).WithDefaults(); c.Concurrency != 7 || c.fifo() {
		t.Errorf("Concurrency %d, FIFO %t; want MaxInFlight and standard", c.Concurrency, c.fifo())
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no queue", Config{}, "QueueURL is required"},
		{"negative receivers", Config{QueueURL: testQueue, Receivers: -1}, "Receivers"},
		{"concurrency above max in flight", Config{QueueURL: testQueue, MaxInFlight: 4, Concurrency: 5}, "Concurrency"},
		{"fractional visibility", Config{QueueURL: testQueue, VisibilityTimeout: 1500 * time.Millisecond}, "VisibilityTimeout"},
		{"visibility over 12h", Config{QueueURL: testQueue, VisibilityTimeout: 13 * time.Hour}, "VisibilityTimeout"},
		{"short poll", Config{QueueURL: testQueue, WaitTime: -time.Second}, "WaitTime"},
		{"long poll over 20s", Config{QueueURL: testQueue, WaitTime: 21 * time.Second}, "WaitTime"},
		{"negative flush interval", Config{QueueURL: testQueue, FlushInterval: -time.Second}, "FlushInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(&sqsfake.SQS{}, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	// Every problem at once.
	_, err := New(&sqsfake.SQS{}, Config{Receivers: -1})
	for _, want := range []string{"QueueURL", "Receivers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want %s named", err, want)
		}
	}
}

func TestFailureVisibility(t *testing.T) {
	t.Parallel()
	r := testRun(t, &sqsfake.SQS{}, Config{RetryBackoff: 2 * time.Second, RetryBackoffMax: time.Minute})
	for _, tc := range []struct {
		receives int
		lo, hi   time.Duration
	}{
		{1, 1, 2}, {2, 2, 4}, {3, 4, 8}, {4, 8, 16}, {6, 30, 60}, {50, 30, 60},
	} {
		for range 50 {
			if got := r.failureVisibility(tc.receives, lease.MaxVisibility); got < tc.lo*time.Second || got > tc.hi*time.Second || got%time.Second != 0 {
				t.Fatalf("receive %d: back-off %v, want whole seconds within %d-%ds", tc.receives, got, tc.lo, tc.hi)
			}
		}
	}
	if got := r.failureVisibility(10, 5*time.Second); got != 5*time.Second {
		t.Errorf("back-off %v past the 12-hour cap, want the 5s left", got)
	}
}

// testRun is a run on a fake, for the parts that need no Run loop.
func testRun(t *testing.T, api *sqsfake.SQS, cfg Config) *run {
	t.Helper()
	cfg.QueueURL = testQueue
	c, err := New(api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRun(c, handler.HandlerFunc(func(context.Context, *handler.Message) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	r.runCtx, r.workCtx = t.Context(), t.Context()
	t.Cleanup(func() { r.acks.close(context.Background()) })
	return r
}

// A delete refused for a receipt handle is reported, not retried; one that
// fails on the server's side is retried.
func TestFlushDeletesRetriesOrReports(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls [][]string
	)
	api := &sqsfake.SQS{DeleteMessageBatchFunc: func(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		var handles []string
		out := &sqs.DeleteMessageBatchOutput{}
		for _, e := range in.Entries {
			h := aws.ToString(e.ReceiptHandle)
			handles = append(handles, h)
			switch {
			case h == "stale":
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			case h == "flaky" && len(calls) == 0:
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError")})
			default:
				out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
			}
		}
		calls = append(calls, handles)
		return out, nil
	}}
	r := testRun(t, api, Config{})
	var ds []*delivery
	for _, h := range []string{"ok", "stale", "flaky"} {
		ds = append(ds, &delivery{lease: r.leases.Hold(h, time.Now(), nil)})
	}
	r.live = len(ds)
	r.acks.flushDeletes(t.Context(), ds)
	if got := fmt.Sprint(calls); got != "[[ok stale flaky] [flaky]]" {
		t.Errorf("calls %s, want the flaky entry retried alone", got)
	}
	if st := r.c.Stats(); st.Deleted != 2 || st.AckErrors != 1 {
		t.Errorf("stats %+v; want 2 deleted, 1 reported", st)
	}
	if r.live != 0 {
		t.Errorf("%d messages still live", r.live)
	}
}

// TestPollWait: each long poll ends within the drain, so one in flight at
// SIGTERM returns before SHUTDOWN_TIMEOUT.
func TestPollWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ shutdown, want time.Duration }{
		{25 * time.Second, 20 * time.Second}, {21 * time.Second, 20 * time.Second}, {10 * time.Second, 9 * time.Second},
		{5500 * time.Millisecond, 4 * time.Second}, {time.Second, time.Second}, {-1, 20 * time.Second},
	} {
		c := Config{QueueURL: testQueue, ShutdownTimeout: tc.shutdown}.WithDefaults()
		if got := c.pollWait(); got != tc.want {
			t.Errorf("SHUTDOWN_TIMEOUT %v: polls of %v, want %v", tc.shutdown, got, tc.want)
		}
	}
}
