package publish_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/sqsbatch/sqsbatchtest"
)

// BenchmarkPublish is the publisher's own cost per result with many
// handlers publishing at once (SQS answering instantly), and how many
// results each call carries.
func BenchmarkPublish(b *testing.B) {
	p, err := publish.New(&sqsbatchtest.Accepting{}, publish.Config{QueueURL: "http://q/1/results.fifo"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background()) //nolint:errcheck // nothing pending
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := p.Publish(context.Background(), result(fmt.Sprintf("c%p-%d", pb, i), i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	s := p.Stats()
	b.ReportMetric(float64(s.Accepted)/float64(max(s.Calls, 1)), "results/call")
}
