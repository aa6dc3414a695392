package consumer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// fakeSQS is a hand-written fake: each method calls its function field (nil
// answers an empty success).
type fakeSQS struct {
	receive func(context.Context, *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error)
	del     func(context.Context, *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error)
	change  func(context.Context, *sqs.ChangeMessageVisibilityBatchInput) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	send    func(context.Context, *sqs.SendMessageInput) (*sqs.SendMessageOutput, error)
}

var _ SQSAPI = (*fakeSQS)(nil)

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if f.receive == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.receive(ctx, in)
}

func (f *fakeSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if f.del == nil {
		return &sqs.DeleteMessageBatchOutput{}, nil
	}
	return f.del(ctx, in)
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if f.change == nil {
		return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
	}
	return f.change(ctx, in)
}

func (f *fakeSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if f.send == nil {
		return &sqs.SendMessageOutput{}, nil
	}
	return f.send(ctx, in)
}

const (
	testQueue = "http://localhost:4566/000000000000/in"
	testDLQ   = "http://localhost:4566/000000000000/in-dlq"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{QueueURL: testQueue + ".fifo", DLQURL: testDLQ + ".fifo"}.WithDefaults()
	want := Config{
		QueueURL: testQueue + ".fifo", DLQURL: testDLQ + ".fifo", FIFO: true,
		Receivers: DefaultReceivers, MaxInFlight: DefaultMaxInFlight, Concurrency: DefaultMaxInFlight,
		VisibilityTimeout: DefaultVisibilityTimeout, ShutdownTimeout: DefaultShutdownTimeout,
		FinalFlushTimeout: DefaultFinalFlushTimeout, WaitTime: DefaultWaitTime, FlushInterval: DefaultFlushInterval,
		RetryBackoff: DefaultRetryBackoff, RetryBackoffMax: DefaultRetryBackoffMax,
		HoldFor: DefaultHoldFor, HoldBackoff: DefaultHoldBackoff, CallTimeout: DefaultCallTimeout,
	}
	if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := c.validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if c := (Config{QueueURL: testQueue, DLQURL: testDLQ, MaxInFlight: 7}).WithDefaults(); c.Concurrency != 7 || c.FIFO {
		t.Errorf("Concurrency %d, FIFO %t; want MaxInFlight and standard", c.Concurrency, c.FIFO)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no queue", Config{DLQURL: testDLQ}, "QueueURL is required"},
		{"no DLQ", Config{QueueURL: testQueue}, "DLQURL is required"},
		{"FIFO on a standard queue", Config{QueueURL: testQueue, DLQURL: testDLQ, FIFO: true}, "not a .fifo queue"},
		{"standard DLQ for a FIFO queue", Config{QueueURL: testQueue + ".fifo", DLQURL: testDLQ}, "dead-letter queue"},
		{"negative receivers", Config{QueueURL: testQueue, DLQURL: testDLQ, Receivers: -1}, "Receivers"},
		{"concurrency above max in flight", Config{QueueURL: testQueue, DLQURL: testDLQ, MaxInFlight: 4, Concurrency: 5}, "Concurrency"},
		{"fractional visibility", Config{QueueURL: testQueue, DLQURL: testDLQ, VisibilityTimeout: 1500 * time.Millisecond}, "VisibilityTimeout"},
		{"visibility over 12h", Config{QueueURL: testQueue, DLQURL: testDLQ, VisibilityTimeout: 13 * time.Hour}, "VisibilityTimeout"},
		{"short poll", Config{QueueURL: testQueue, DLQURL: testDLQ, WaitTime: -time.Second}, "WaitTime"},
		{"long poll over 20s", Config{QueueURL: testQueue, DLQURL: testDLQ, WaitTime: 21 * time.Second}, "WaitTime"},
		{"negative flush interval", Config{QueueURL: testQueue, DLQURL: testDLQ, FlushInterval: -time.Second}, "FlushInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(&fakeSQS{}, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	// Every problem at once.
	_, err := New(&fakeSQS{}, Config{Receivers: -1})
	for _, want := range []string{"QueueURL", "DLQURL", "Receivers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want %s named", err, want)
		}
	}
}

func TestFailureVisibility(t *testing.T) {
	t.Parallel()
	cfg := Config{RetryBackoff: 2 * time.Second, RetryBackoffMax: time.Minute}
	for _, tc := range []struct {
		receives int
		lo, hi   int32
	}{
		{1, 1, 2}, {2, 2, 4}, {3, 4, 8}, {4, 8, 16}, {6, 30, 60}, {50, 30, 60},
	} {
		for range 50 {
			if got := failureVisibility(cfg, tc.receives, MaxVisibility); got < tc.lo || got > tc.hi {
				t.Fatalf("receive %d: back-off %ds, want %d-%ds", tc.receives, got, tc.lo, tc.hi)
			}
		}
	}
	if got := failureVisibility(cfg, 10, 5*time.Second); got != 5 {
		t.Errorf("back-off %ds past the 12-hour cap, want the 5s left", got)
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}, true},
		{&smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultUnknown}, true},
		{&smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}, true},
		{&types.RequestThrottled{}, true},
		{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true},
		{fmt.Errorf("receive: %w", &types.QueueDoesNotExist{}), false},
		{&types.ReceiptHandleIsInvalid{}, false},
		{&smithy.GenericAPIError{Code: "AccessDenied", Fault: smithy.FaultClient}, false},
		{fmt.Errorf("receive: %w", context.Canceled), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
	for _, tc := range []struct {
		e    types.BatchResultErrorEntry
		want bool
	}{
		{types.BatchResultErrorEntry{Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true}, true},
		{types.BatchResultErrorEntry{Code: aws.String("InvalidParameterValue"), SenderFault: true}, true},
		{types.BatchResultErrorEntry{Code: aws.String("RequestThrottled"), SenderFault: true}, false},
		{types.BatchResultErrorEntry{Code: aws.String("InternalError"), SenderFault: false}, false},
	} {
		if got := entryFatal(tc.e); got != tc.want {
			t.Errorf("entryFatal(%s) = %t, want %t", aws.ToString(tc.e.Code), got, tc.want)
		}
	}
}

func TestAttrText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain reason", "plain reason"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"nul \x00 and bell \a", "nul \uFFFD and bell \uFFFD"},
		{"tab\tnewline\n", "tab\tnewline\n"},
	} {
		if got := attrText(tc.in, 100); got != tc.want {
			t.Errorf("attrText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := attrText(long, MaxErrorAttrLen)
	if len(got) > MaxErrorAttrLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("truncated to %d bytes, valid %t: %q…", len(got), utf8.ValidString(got), got[:20])
	}
}

func TestSlots(t *testing.T) {
	t.Parallel()
	s := newSlots(12)
	if n, _ := s.acquire(t.Context(), 5, 10); n != 10 {
		t.Fatalf("took %d, want 10", n)
	}
	got := make(chan int)
	go func() {
		n, _ := s.acquire(context.Background(), 5, 10)
		got <- n
	}()
	s.release(2) // 4 free: still too few for a batch of 5
	select {
	case n := <-got:
		t.Fatalf("took %d with only 4 free", n)
	default:
	}
	s.release(3)
	if n := <-got; n != 7 {
		t.Errorf("took %d, want all 7 free", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.acquire(ctx, 1, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire on a cancelled context: %v", err)
	}
}

func TestBatcher(t *testing.T) {
	t.Parallel()
	batches := make(chan []int, 10)
	b := newBatcher(100, time.Hour, func(_ context.Context, batch []int) { batches <- batch })
	b.start(t.Context(), 2)
	for i := range 13 {
		b.add(i)
	}
	if first := <-batches; len(first) != MaxBatch {
		t.Errorf("first batch %v, want a full batch at once", first)
	}
	b.close() // the last 3 go on close, not after the hour
	if rest := <-batches; len(rest) != 3 {
		t.Errorf("rest %v, want 3", rest)
	}
	b.wait()
	if b.add(99) {
		t.Error("add after close accepted")
	}

	quick := newBatcher(100, 5*time.Millisecond, func(_ context.Context, batch []int) { batches <- batch })
	quick.start(t.Context(), 1)
	quick.add(1)
	if got := <-batches; len(got) != 1 {
		t.Errorf("got %v, want the lone item after the interval", got)
	}
	quick.close()
	quick.wait()
}

// testRun is a run on a fake, for the parts that need no Run loop.
func testRun(t *testing.T, api *fakeSQS, cfg Config) *run {
	t.Helper()
	cfg.QueueURL, cfg.DLQURL = testQueue, testDLQ
	c, err := New(api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := newRun(c, HandlerFunc(func(context.Context, *Message) error { return nil }))
	r.ackCtx, r.workCtx = t.Context(), t.Context()
	return r
}

// An extension never goes past SQS's 12-hour cap; a lease at the cap runs
// out at its deadline and is lost.
func TestExtensionCappedAt12Hours(t *testing.T) {
	t.Parallel()
	r := testRun(t, &fakeSQS{}, Config{VisibilityTimeout: 30 * time.Second})
	now := time.Now()
	d := func(age time.Duration) *delivery {
		return &delivery{Message: Message{ID: age.String()}, leaseStart: now.Add(-age),
			deadline: now.Add(10 * time.Second), nextExtend: now, index: -1, state: stRunning}
	}
	young, old, capped := d(time.Minute), d(MaxVisibility-5*time.Second-500*time.Millisecond), d(MaxVisibility-500*time.Millisecond)
	capped.cancel = func(error) {}
	r.mu.Lock()
	r.live = 3
	for _, x := range []*delivery{young, old, capped} {
		heap.Push(&r.leases, x)
	}
	r.mu.Unlock()
	due, _ := r.dueLeases(now)
	vis := map[string]int32{}
	for _, e := range due {
		vis[e.d.ID] = e.vis
	}
	if vis[young.ID] != 30 || vis[old.ID] != 5 {
		t.Errorf("extensions %v; want 30s for the young lease and the 5s left for the old one", vis)
	}
	if _, ok := vis[capped.ID]; ok || capped.nextExtend != capped.deadline {
		t.Errorf("a lease at the cap was extended (%v) or not kept until its deadline", vis)
	}
	r.dueLeases(capped.deadline)
	if !capped.lost {
		t.Error("a lease at the cap was not lost at its deadline")
	}
}

// A delete refused for a receipt handle is reported, not retried; one that
// fails on the server's side is retried.
func TestFlushDeletesRetriesOrReports(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls [][]string
	)
	api := &fakeSQS{del: func(_ context.Context, in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
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
	ds := []*delivery{{receipt: "ok"}, {receipt: "stale"}, {receipt: "flaky"}}
	r.live = len(ds)
	r.flushDeletes(t.Context(), ds)
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
