package consumer_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/handler"
)

// Transient SQS errors (5xx, throttling, connection resets) through the
// SDK: an outage's failed receives reach the consumer (after the SDK's own
// retries) without a storm of calls, and under flaky answers every message
// is still handled and deleted. The receivers' back-off over a long outage
// is timed in virtual time by TestReceiveErrorsBackOff.
func TestTransientSQSErrors(t *testing.T) {
	t.Parallel()
	// An endpoint of its own: faults are set per proxy (kumo's queues are
	// shared, so the queues are the same whichever endpoint made them).
	faulty, err := devstack.StartAWS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(faulty.Stop)
	const n = 200
	api := client(kumotest.URL())
	input := kumotest.Queue(t, api, false)
	send(t, api, input, bodies("%03d", n), 4)

	// Phase 1: every receive fails for a while.
	faulty.SetFault(func(api string) devstack.Fault {
		if api == "SQS.ReceiveMessage" {
			return devstack.Fault{Status: 503, Code: "ServiceUnavailable"}
		}
		return devstack.Fault{}
	})
	var handled [n]atomic.Int32
	c := newConsumer(t, client(faulty.URL), input, consumer.Config{VisibilityTimeout: 2 * time.Second, WaitTime: time.Second})
	run := start(t, c, handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		i, _ := strconv.Atoi(m.Body)
		handled[i].Add(1)
		return nil
	}))
	waitFor(t, 10*time.Second, "receive errors to reach the consumer", func() bool { return c.Stats().ReceiveErrors >= 2 })
	before := faulty.Calls()["SQS.ReceiveMessage"]
	outage := time.Now()
	waitFor(t, 15*time.Second, "more receive errors", func() bool { return c.Stats().ReceiveErrors >= 8 })
	took := time.Since(outage)
	errs, calls := c.Stats().ReceiveErrors, faulty.Calls()["SQS.ReceiveMessage"]
	// Each failed ReceiveMessage of the consumer is at most the SDK's 3
	// attempts, and each receiver has at most one call in flight.
	if limit := 3 * (errs + 2); int64(calls) > limit {
		t.Errorf("%d receive calls reached SQS for %d receive errors (at most %d)", calls, errs, limit)
	}
	// 2 receivers, each a call and the SDK's 2 retries per failure, then
	// the receivers' growing back-off: a hot loop would make thousands a
	// second (this rate fails with the back-off made 1ns; the count above
	// does not).
	if perSec := float64(calls-before) / took.Seconds(); perSec > 30 {
		t.Errorf("%d receive calls in %s during the outage: spinning", calls-before, took)
	}
	t.Logf("outage: %d receive calls for %d receive errors, %d of them in %s", calls, errs, calls-before, took.Round(time.Millisecond))

	// Phase 2: a third of all calls fail, in every way.
	faulty.SetFault(func(api string) devstack.Fault {
		switch rand.N(9) {
		case 0:
			return devstack.Fault{Status: 503, Code: "ServiceUnavailable"}
		case 1:
			return devstack.Fault{Status: 400, Code: "ThrottlingException"}
		case 2:
			return devstack.Fault{Drop: true}
		}
		return devstack.Fault{}
	})
	all := func() bool {
		for i := range handled {
			if handled[i].Load() == 0 {
				return false
			}
		}
		v, f := depth(t, api, input)
		return v+f == 0
	}
	waitFor(t, 30*time.Second, "every message handled and deleted", all)
	faulty.SetFault(nil)
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := c.Stats()
	t.Logf("stats: %+v", st)
	if st.Deleted+st.AckErrors < n {
		t.Errorf("deleted %d, ack errors %d: some messages neither deleted nor reported", st.Deleted, st.AckErrors)
	}
}
