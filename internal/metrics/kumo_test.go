package metrics_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/rs/zerolog"
	"github.com/sivchari/kumo"

	"github.com/chatprep/chatprep/internal/metrics"
)

// sdkClient is a CloudWatch client for an endpoint: static credentials,
// region us-east-1, the SDK's compression threshold, then opts.
func sdkClient(url string, opts ...func(*cloudwatch.Options)) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:                      "us-east-1",
		Credentials:                 credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:                aws.String(url),
		RequestMinCompressSizeBytes: 10240,
	}, opts...)
}

// kumoClient is set up as the embedded stack sets the worker up: request
// compression off (kumo ignores Content-Encoding).
func kumoClient(url string) *cloudwatch.Client {
	return sdkClient(url, func(o *cloudwatch.Options) { o.DisableRequestCompression = true })
}

// TestKumoListsEveryContractMetric records every contract metric with its
// dimensions, flushes through the real SDK to kumo the way the worker runs
// against it (METRICS_TIMESTAMPS=false, AWS_DISABLE_REQUEST_COMPRESSION=true),
// and reads them back with ListMetrics: each [Route] metric once per route,
// the others without dimensions, nothing else.
func TestKumoListsEveryContractMetric(t *testing.T) {
	t.Parallel()
	srv := kumo.NewServer()
	defer srv.Close()
	client := kumoClient(srv.URL)
	ns := "Test/Kumo/" + time.Now().Format("150405.000000") // kumo's state is process-wide
	agg, err := metrics.New(client, metrics.Config{Namespace: ns, OmitTimestamps: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	routes := []string{"odoo_erp", "general", "other"}
	var want []string
	for _, m := range metrics.Metrics() {
		for _, r := range routes {
			if m.Kind == metrics.KindDuration {
				agg.Duration(m.Name, r, 15*time.Millisecond)
				agg.Duration(m.Name, r, 40*time.Millisecond)
			} else {
				agg.Count(m.Name, r, 1)
			}
			if m.Route {
				want = append(want, m.Name+"{Route="+r+"}")
			}
		}
		if !m.Route {
			want = append(want, m.Name+"{}")
		}
	}
	if err := agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := agg.Stats(); st.Calls != 1 || st.Sent != uint64(len(want)) || st.Dropped != 0 {
		t.Errorf("stats %+v; want %d data in one call", st, len(want))
	}

	// ListMetrics may lag behind in real CloudWatch; poll kumo with a deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for {
		got = nil
		p := cloudwatch.NewListMetricsPaginator(client, &cloudwatch.ListMetricsInput{Namespace: aws.String(ns)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Metrics {
				var dims []string
				for _, d := range m.Dimensions {
					dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
				}
				got = append(got, aws.ToString(m.MetricName)+"{"+strings.Join(dims, ",")+"}")
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if slices.Equal(got, want) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListMetrics:\n got %v\nwant %v", got, want)
	}
}
