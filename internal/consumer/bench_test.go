package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/handler"
)

// BenchmarkConsumerCallsPerMessage runs b.N messages through a handler that
// does nothing, at full load with the default configuration, and reports
// the SQS calls per message by API (the goal: at most 0.35 in all, receive
// and delete only).
func BenchmarkConsumerCallsPerMessage(b *testing.B) {
	api := client(kumotest.URL())
	input := kumotest.Queue(b, api, false)
	send(b, api, input, bodies("%08d", b.N), 4)
	var (
		handled atomic.Int64
		all     = make(chan struct{})
	)
	c := newConsumer(b, api, input, consumer.Config{})
	b.ResetTimer()
	run := start(b, c, handler.HandlerFunc(func(context.Context, *handler.Message) error {
		if handled.Add(1) == int64(b.N) {
			close(all)
		}
		return nil
	}))
	<-all
	b.StopTimer()
	if _, err := run.stop(); err != nil {
		b.Fatalf("Run: %v", err)
	}
	st := c.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(st.Calls.Total())/n, "calls/msg")
	b.ReportMetric(float64(st.Calls.ReceiveMessage)/n, "receive/msg")
	b.ReportMetric(float64(st.Calls.DeleteMessageBatch)/n, "delete/msg")
	b.ReportMetric(float64(st.Calls.ChangeMessageVisibilityBatch)/n, "change/msg")
	if st.Deleted != int64(b.N) {
		b.Errorf("deleted %d of %d", st.Deleted, b.N)
	}
}
