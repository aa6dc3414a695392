package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/consumer/sqsfake"
	"github.com/chatprep/chatprep/internal/handler"
)

// The tests of this file are about the consumer's own timing: they run in
// a synctest bubble, in virtual time, against sqsfake's in-memory queue
// (kumo needs a real socket, which a bubble cannot hold). Their handlers'
// time.Sleep is the work, taking virtual time; nothing waits for real.

var _ consumer.SQSAPI = (*sqsfake.SQS)(nil)

// fakeQueueURL names the fake's queue (a standard queue).
const fakeQueueURL = "http://sqs.fake/000000000000/in"

// A handler slower than the visibility timeout: the lease is extended, the
// message is not delivered again meanwhile, and it is deleted at the end.
// (TestSlowHandlerLeaseExtended checks the same against kumo.)
func TestSlowHandlerLeaseExtendedVirtualTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := sqsfake.NewQueue()
		q.Send("slow-0")
		var calls atomic.Int32
		started, finished := make(chan struct{}), make(chan struct{})
		c := newConsumer(t, q.API(), fakeQueueURL, consumer.Config{VisibilityTimeout: time.Second, WaitTime: time.Second})
		run := start(t, c, handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			if calls.Add(1) > 1 {
				return fmt.Errorf("delivered again (receive count %d)", m.ReceiveCount)
			}
			close(started)
			time.Sleep(3500 * time.Millisecond) // the work: 3.5 visibility timeouts
			if err := context.Cause(ctx); err != nil {
				return fmt.Errorf("context cancelled: %w", err)
			}
			close(finished)
			return nil
		}))
		<-started
		leaseHolds(t, q.API(), fakeQueueURL, c, run, &calls, finished)
		assertFakeEmpty(t, q)
	})
}

// A message that a long poll returns after waiting longer than the
// visibility timeout has a whole lease: its timeout started when SQS
// answered (as the fake's does), not when the poll was sent. Counted from
// the send, the lease would be over before the message arrived.
func TestLateLongPollKeepsLease(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := sqsfake.NewQueue()
		c := newConsumer(t, q.API(), fakeQueueURL, consumer.Config{
			Receivers: 1, VisibilityTimeout: 2 * time.Second, WaitTime: 10 * time.Second,
		})
		run := start(t, c, handler.HandlerFunc(func(context.Context, *handler.Message) error {
			time.Sleep(3 * time.Second) // the work: longer than one lease
			return nil
		}))
		// The first poll (FirstWaitTime) reaches the queue; the second is the
		// first long poll.
		waitFor(t, 5*time.Second, "the first long poll", func() bool { return c.Stats().Calls.ReceiveMessage == 2 })
		time.Sleep(3 * time.Second) // virtual: the poll waits past the visibility timeout
		if n := c.Stats().Calls.ReceiveMessage; n != 2 {
			t.Fatalf("%d polls; want the first long one still waiting", n)
		}
		q.Send("late-0")
		waitFor(t, 15*time.Second, "the message to finish", func() bool { return c.Stats().Deleted == 1 })
		if _, err := run.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if st := c.Stats(); st.LeasesLost != 0 || st.Extended == 0 {
			t.Errorf("stats %+v; want the lease extended, none lost", st)
		}
	})
}

// During an SQS outage (every ReceiveMessage fails, as after the SDK's own
// retries) the receivers back off and do not spin: each waits 200ms, then
// twice as long after each further failure, jittered down to half. Once
// SQS answers again, the waiting messages are handled and deleted.
// (TestTransientSQSErrors checks flaky answers through the SDK and kumo.)
func TestReceiveErrorsBackOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 20
		q := sqsfake.NewQueue()
		for i := range n {
			q.Send(fmt.Sprintf("%03d", i))
		}
		api := q.API()
		var down atomic.Bool
		down.Store(true)
		var calls atomic.Int64
		api.ReceiveMessageFunc = func(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
			if calls.Add(1) > 1000 {
				panic("receivers spinning") // no virtual time passes in a hot loop: the test would hang
			}
			if down.Load() {
				return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "down", Fault: smithy.FaultServer}
			}
			return q.ReceiveMessage(ctx, in, opts...)
		}
		var handled atomic.Int64
		c := newConsumer(t, api, fakeQueueURL, consumer.Config{Receivers: 2, VisibilityTimeout: 2 * time.Second})
		run := start(t, c, handler.HandlerFunc(func(context.Context, *handler.Message) error {
			handled.Add(1)
			return nil
		}))

		time.Sleep(10 * time.Second) // virtual: a 10s outage
		// Each receiver calls at 0 and then after waits of 100-200ms,
		// 200-400ms, 400-800ms, 0.8-1.6s, 1.6-3.2s and 3.2-6.4s: 6 or 7
		// calls within 10s (the 8th comes at 12.7s at the earliest).
		got, st := calls.Load(), c.Stats()
		if got < 12 || got > 14 || st.ReceiveErrors != got || handled.Load() != 0 {
			t.Errorf("in a 10s outage: %d receive calls, stats %+v, %d handled; want 12-14 calls, each a receive error, none handled",
				got, st, handled.Load())
		}

		down.Store(false)
		// The longest wait pending is the 7th, 6.4s at most.
		waitFor(t, 10*time.Second, "every message handled and deleted", func() bool { return c.Stats().Deleted == n })
		if _, err := run.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if handled.Load() != n {
			t.Errorf("%d handled, want %d", handled.Load(), n)
		}
		assertFakeEmpty(t, q)
	})
}

// A failed message is not deleted: it comes back after the retry back-off
// (RetryBackoff for a first failure, jittered down to half, in whole
// seconds: 1s here), far sooner than the visibility timeout, with its
// receive count grown. (TestFailureBackoff checks SQS honouring it on
// kumo.)
func TestFailureBackoffVirtualTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := sqsfake.NewQueue()
		q.Send("fail-0", "fail-1", "fail-2")
		h := newFailingOnce()
		c := newConsumer(t, q.API(), fakeQueueURL, consumer.Config{
			VisibilityTimeout: 30 * time.Second, RetryBackoff: time.Second,
		})
		run := start(t, c, h)
		waitFor(t, 15*time.Second, "the retries", func() bool { return c.Stats().Deleted == 3 })
		if _, err := run.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// The back-off runs from the visibility change, which waits at most
		// FlushInterval (10ms) after the failure.
		h.check(t, time.Second, time.Second+consumer.DefaultFlushInterval, "the 1s back-off")
		if st := c.Stats(); st.Failed != 3 || st.Deleted != 3 {
			t.Errorf("stats %+v; want 3 failed, 3 deleted", st)
		}
		assertFakeEmpty(t, q)
	})
}

// assertFakeEmpty checks that nothing is left in q, visible or not.
func assertFakeEmpty(t *testing.T, q *sqsfake.Queue) {
	t.Helper()
	if v, f := q.Depth(); v+f != 0 {
		t.Errorf("queue not empty: %d visible, %d in flight", v, f)
	}
}

// When the shutdown bound runs out and a handler ignores its cancelled
// context, Run returns at the final bound, ShutdownTimeout then
// FinalFlushTimeout: not later, and not before (it waits for the handler
// until then). (TestShutdownTimeout checks the same against kumo, where
// the wall clock of a loaded machine adds its delays.)
func TestShutdownTimeoutBoundVirtualTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := sqsfake.NewQueue()
		q.Send("stuck-0")
		cfg := stuckShutdown
		took := stopStuck(t, newConsumer(t, q.API(), fakeQueueURL, cfg))
		if bound := cfg.ShutdownTimeout + cfg.FinalFlushTimeout; took != bound {
			t.Errorf("Run returned after %s, want at the bound %s", took, bound)
		}
	})
}

// Many messages through a handler with random latency: the consumer
// receives ten at a time and deletes in batches, at most 0.35 SQS calls a
// message, every message handled once. In virtual time the count is the
// consumer's own schedule, whatever the machine's load (against kumo,
// TestLoadExactlyOnceWithinMaxInFlight).
func TestCallsPerMessageVirtualTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n, maxInFlight = 2_000, 20
		q := sqsfake.NewQueue()
		for i := range n {
			q.Send(fmt.Sprintf("%04d", i))
		}
		var (
			handled  [n]atomic.Int32
			finished atomic.Int64
			all      = make(chan struct{})
		)
		c := newConsumer(t, q.API(), fakeQueueURL, consumer.Config{MaxInFlight: maxInFlight})
		run := start(t, c, handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			return loadStep(m, handled[:], &finished, all)
		}))
		<-all
		if _, err := run.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for i := range handled {
			if got := handled[i].Load(); got != 1 {
				t.Fatalf("message %04d handled %d times", i, got)
			}
		}
		st := c.Stats()
		if perMsg := float64(st.Calls.Total()) / n; perMsg > 0.35 {
			t.Errorf("%.3f SQS calls per message (receive %.3f, delete %.3f, other %.3f), goal at most 0.35", perMsg,
				float64(st.Calls.ReceiveMessage)/n, float64(st.Calls.DeleteMessageBatch)/n, float64(st.Calls.ChangeMessageVisibilityBatch)/n)
		}
		assertFakeEmpty(t, q)
	})
}
