package metrics_test

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

var benchRoutes = []string{"odoo_erp", "general", "billing"}

var benchDurations = []string{
	metrics.MessageHistoryDuration, metrics.RelevanceSearchDuration, metrics.PreprocessingDuration,
	metrics.HandlerTotalDuration, metrics.QueueWaitDuration,
}

func benchAggregator(b *testing.B, api metrics.CloudWatchAPI, cfg metrics.Config) *metrics.Aggregator {
	b.Helper()
	cfg.Namespace = "Bench"
	cfg.Logger = zerolog.Nop()
	agg, err := metrics.New(api, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return agg
}

// BenchmarkDuration is the cost of one recorded duration, one goroutine.
func BenchmarkDuration(b *testing.B) {
	agg := benchAggregator(b, cwtest.New(b).Client(), metrics.Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		agg.Duration(benchDurations[i%5], benchRoutes[i%3], time.Duration(i)*time.Microsecond)
		i++
	}
}

// BenchmarkDurationContended is the cost per recorded duration with 32
// goroutines per core recording at once, the worst case for the locks.
func BenchmarkDurationContended(b *testing.B) {
	agg := benchAggregator(b, cwtest.New(b).Client(), metrics.Config{})
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			agg.Duration(benchDurations[r.IntN(5)], benchRoutes[r.IntN(3)], time.Duration(r.IntN(1e9)))
		}
	})
}

// BenchmarkCountContended is the same for counts.
func BenchmarkCountContended(b *testing.B) {
	agg := benchAggregator(b, cwtest.New(b).Client(), metrics.Config{})
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			agg.Count(metrics.MessagesProcessed, benchRoutes[r.IntN(3)], 1)
		}
	})
}

// BenchmarkProcessing compares message throughput without flushing, with
// CloudWatch up and with CloudWatch unreachable: each op is one simulated
// message (a little work and the seven values a message records), from 64
// goroutines, while Run flushes every 10 ms (6000 times more often than in
// production) and retries after 1 ms. CloudWatch being down must not slow
// processing down. "up" includes the in-process test server decoding every
// call on the same two cores, which production does not pay.
func BenchmarkProcessing(b *testing.B) {
	for _, tc := range []struct {
		name   string
		client func(b *testing.B) *cloudwatch.Client
	}{
		{"no-flush", nil},
		{"cloudwatch=up", func(b *testing.B) *cloudwatch.Client { return cwtest.New(b).Client() }},
		{"cloudwatch=down", func(b *testing.B) *cloudwatch.Client {
			// A port nobody listens on: every call is refused, then retried.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			url := "http://" + l.Addr().String()
			l.Close()
			return sdkClient(url)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := cwtest.New(b).Client()
			if tc.client != nil {
				client = tc.client(b)
			}
			agg := benchAggregator(b, client, metrics.Config{FlushInterval: 10 * time.Millisecond, RetryMin: time.Millisecond, FinalFlushTimeout: 100 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				if tc.client != nil {
					_ = agg.Run(ctx)
				}
			}()
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 0))
				var buf [512]byte
				for pb.Next() {
					start := time.Now()
					sum := sha256.Sum256(buf[:]) // the message's own work
					buf[0] = sum[0]
					route := benchRoutes[r.IntN(3)]
					agg.Duration(metrics.QueueWaitDuration, "", time.Duration(r.IntN(1e8)))
					agg.Duration(metrics.MessageHistoryDuration, route, time.Duration(r.IntN(1e7)))
					agg.Duration(metrics.RelevanceSearchDuration, route, time.Duration(r.IntN(1e7)))
					agg.Duration(metrics.PreprocessingDuration, route, time.Duration(r.IntN(1e7)))
					agg.Count(metrics.MessagesProcessed, route, 1)
					agg.Count(metrics.MessagesDegraded, route, 0)
					agg.Duration(metrics.HandlerTotalDuration, route, time.Since(start))
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			cancel()
			<-done
			st := agg.Stats()
			b.ReportMetric(float64(st.Calls), "calls")
			b.ReportMetric(float64(st.Failures), "failed-calls")
		})
	}
}
