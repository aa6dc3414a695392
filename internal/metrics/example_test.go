package metrics_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/chatprep/chatprep/internal/metrics"
)

// putFunc is a hand-written CloudWatchAPI: a function.
type putFunc func(context.Context, *cloudwatch.PutMetricDataInput) error

func (f putFunc) PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	return &cloudwatch.PutMetricDataOutput{}, f(ctx, in)
}

// printData prints what a call would send.
func printData(_ context.Context, in *cloudwatch.PutMetricDataInput) error {
	for _, d := range in.MetricData {
		fmt.Print(aws.ToString(d.MetricName))
		for _, dim := range d.Dimensions {
			fmt.Printf(" %s=%s", aws.ToString(dim.Name), aws.ToString(dim.Value))
		}
		fmt.Print(" at ", d.Timestamp.Format(time.TimeOnly))
		if d.Value != nil {
			fmt.Print(" value ", *d.Value)
		} else {
			fmt.Print(" values ", d.Values, " counts ", d.Counts)
		}
		fmt.Println("", d.Unit)
	}
	return nil
}

// The worker's way: Run flushes every FlushInterval in the background, and
// once more when its context ends (shutdown), then returns.
func Example() {
	now := time.Date(2026, 11, 28, 10, 0, 41, 0, time.UTC)
	agg, err := metrics.New(putFunc(printData), metrics.Config{
		Namespace: "ChatPrep",
		Now:       func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- agg.Run(ctx) }()

	agg.Duration(metrics.HandlerTotalDuration, "odoo_erp", 19400*time.Microsecond)
	agg.Duration(metrics.HandlerTotalDuration, "odoo_erp", 12*time.Millisecond)
	agg.Count(metrics.MessagesProcessed, "odoo_erp", 1)
	agg.Count(metrics.MessagesProcessed, "no-such-route", 1) // folded into "other"

	cancel() // shutdown: the final flush sends what is pending
	fmt.Println("run:", <-done)
	// Output:
	// handler_total_duration Route=odoo_erp at 10:00:00 values [12 19.4] counts [1 1] Milliseconds
	// messages_processed Route=other at 10:00:00 value 1 Count
	// messages_processed Route=odoo_erp at 10:00:00 value 1 Count
	// run: <nil>
}

// With METRICS_ENABLED=false the worker passes a nil *Aggregator: every
// method is a no-op.
func Example_disabled() {
	var agg *metrics.Aggregator
	agg.Duration(metrics.HandlerTotalDuration, "general", time.Second)
	agg.Count(metrics.MessagesProcessed, "general", 1)
	fmt.Println(agg.Flush(context.Background()), agg.Stats().Recorded)
	// Output: <nil> 0
}
