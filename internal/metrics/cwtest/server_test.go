package cwtest_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

func noRetries(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 }

// TestRecordsEveryFieldExactly sends each kind of datum through the real SDK,
// once small (uncompressed) and once padded past the SDK's 10 KiB
// compression threshold, and gets back exactly what was sent.
func TestRecordsEveryFieldExactly(t *testing.T) {
	t.Parallel()
	ts := time.Now().Truncate(time.Minute).Add(-time.Minute).UTC()
	sent := []types.MetricDatum{
		{MetricName: aws.String("v"), Value: aws.Float64(1.5), Unit: types.StandardUnitCount,
			Dimensions: []types.Dimension{{Name: aws.String("Route"), Value: aws.String("general")}, {Name: aws.String("A"), Value: aws.String("b")}}},
		{MetricName: aws.String("vc"), Values: []float64{0.25, 3, 1e6}, Counts: []float64{2, 1, 7}, Unit: types.StandardUnitMilliseconds, Timestamp: aws.Time(ts)},
		{MetricName: aws.String("s"), StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(3), Sum: aws.Float64(6), Minimum: aws.Float64(1), Maximum: aws.Float64(3)},
			StorageResolution: aws.Int32(1)},
	}
	for _, tc := range []struct {
		name       string
		pad        int
		compressed bool
	}{
		{"small", 0, false},
		{"compressed", 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := cwtest.New(t)
			data := slices.Clone(sent)
			for i := range tc.pad {
				data = append(data, types.MetricDatum{MetricName: aws.String("pad"), Value: aws.Float64(float64(i))})
			}
			if _, err := s.Client().PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("NS"), MetricData: data}); err != nil {
				t.Fatal(err)
			}
			calls := s.Calls()
			if len(calls) != 1 || calls[0].Compressed != tc.compressed || calls[0].Namespace != "NS" || len(calls[0].Data) != len(data) {
				t.Fatalf("calls %+v", calls)
			}
			got := calls[0].Data[:3]
			v, vc, st := got[0], got[1], got[2]
			if *v.Value != 1.5 || v.Unit != "Count" || v.Dims() != "A=b,Route=general" || v.Timestamp != nil {
				t.Errorf("Value datum %+v", v)
			}
			if !slices.Equal(vc.Values, []float64{0.25, 3, 1e6}) || !slices.Equal(vc.Counts, []float64{2, 1, 7}) || !vc.Timestamp.Equal(ts) || vc.Unit != "Milliseconds" {
				t.Errorf("Values datum %+v", vc)
			}
			if !reflect.DeepEqual(st.StatisticValues, &cwtest.StatisticSet{SampleCount: 3, Sum: 6, Minimum: 1, Maximum: 3}) || *st.StorageResolution != 1 {
				t.Errorf("StatisticValues datum %+v", st)
			}
			agg := s.Aggregates()[cwtest.Key{Namespace: "NS", MetricName: "vc", Timestamp: ts}]
			if agg.SampleCount != 10 || agg.Sum != 0.5+3+7e6 || agg.Minimum != 0.25 || agg.Maximum != 1e6 || agg.Percentile(50) != 1e6 || agg.Percentile(20) != 0.25 {
				t.Errorf("aggregate %+v", agg)
			}
		})
	}
}

// TestRefusesWhatCloudWatchRefuses: calls breaking CloudWatch's documented
// limits get CloudWatch's InvalidParameterValue, and are not recorded.
func TestRefusesWhatCloudWatchRefuses(t *testing.T) {
	t.Parallel()
	many := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		data []types.MetricDatum
	}{
		{"151 values", []types.MetricDatum{{MetricName: aws.String("m"), Values: many(151)}}},
		{"repeated value", []types.MetricDatum{{MetricName: aws.String("m"), Values: []float64{1, 1}}}},
		{"counts of another length", []types.MetricDatum{{MetricName: aws.String("m"), Values: []float64{1, 2}, Counts: []float64{1}}}},
		{"value and statistics", []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1),
			StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(1), Maximum: aws.Float64(1)}}}},
		{"no value", []types.MetricDatum{{MetricName: aws.String("m")}}},
		{"NaN", []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(math.NaN())}}},
		{"three weeks old", []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1), Timestamp: aws.Time(time.Now().Add(-21 * 24 * time.Hour))}}},
		{"three hours ahead", []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1), Timestamp: aws.Time(time.Now().Add(3 * time.Hour))}}},
		{"1001 data", func() []types.MetricDatum {
			d := make([]types.MetricDatum, 1001)
			for i := range d {
				d[i] = types.MetricDatum{MetricName: aws.String("m"), Value: aws.Float64(1)}
			}
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := cwtest.New(t)
			_, err := s.Client(noRetries).PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("NS"), MetricData: tc.data})
			var ipv *types.InvalidParameterValueException
			if !errors.As(err, &ipv) {
				t.Fatalf("err = %v; want InvalidParameterValue", err)
			}
			if len(s.Calls()) != 0 || s.Requests() != 1 {
				t.Errorf("%d calls recorded of %d requests", len(s.Calls()), s.Requests())
			}
		})
	}
}

// TestInjectedFailures: FailNext fails exactly the next calls, Fail every
// call until Recover, with errors the SDK classifies as CloudWatch's.
func TestInjectedFailures(t *testing.T) {
	t.Parallel()
	s := cwtest.New(t)
	c := s.Client(noRetries)
	put := func(ctx context.Context) error {
		_, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("NS"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}})
		return err
	}
	s.FailNext(1, cwtest.Throttling())
	s.FailNext(1, cwtest.InternalError())
	var ae smithy.APIError
	if err := put(t.Context()); !errors.As(err, &ae) || ae.ErrorCode() != "Throttling" {
		t.Errorf("first call: %v; want Throttling", err)
	}
	var isf *types.InternalServiceFault
	if err := put(t.Context()); !errors.As(err, &isf) {
		t.Errorf("second call: %v; want InternalServiceFault", err)
	}
	if err := put(t.Context()); err != nil {
		t.Errorf("third call: %v", err)
	}
	s.Fail(cwtest.Hang())
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer cancel() // give up once the server holds the call
		_ = s.WaitRequests(t.Context(), 4)
	}()
	if err := put(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("hanging call: %v; want it cancelled", err)
	}
	s.Recover()
	if err := put(t.Context()); err != nil {
		t.Errorf("after Recover: %v", err)
	}
	if len(s.Calls()) != 2 || s.Requests() != 5 {
		t.Errorf("%d calls of %d requests; want 2 of 5", len(s.Calls()), s.Requests())
	}
	if err := s.WaitCalls(t.Context(), 2); err != nil {
		t.Error(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := s.WaitCalls(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitCalls for a call that never comes: %v", err)
	}
}

func TestListMetrics(t *testing.T) {
	t.Parallel()
	s := cwtest.New(t)
	c := s.Client()
	for _, ns := range []string{"A", "B"} {
		_, err := c.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []types.MetricDatum{
			{MetricName: aws.String("m"), Value: aws.Float64(1), Dimensions: []types.Dimension{{Name: aws.String("Route"), Value: aws.String("x")}}},
			{MetricName: aws.String("m"), Value: aws.Float64(2), Dimensions: []types.Dimension{{Name: aws.String("Route"), Value: aws.String("x")}}},
			{MetricName: aws.String("n"), Value: aws.Float64(1)},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ListMetrics(t.Context(), &cloudwatch.ListMetricsInput{Namespace: aws.String("A")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Metrics) != 2 || aws.ToString(out.Metrics[0].MetricName) != "m" || aws.ToString(out.Metrics[0].Dimensions[0].Value) != "x" ||
		aws.ToString(out.Metrics[1].MetricName) != "n" || len(out.Metrics[1].Dimensions) != 0 {
		t.Errorf("ListMetrics %+v", out.Metrics)
	}
	out, err = c.ListMetrics(t.Context(), &cloudwatch.ListMetricsInput{Namespace: aws.String("B"), Dimensions: []types.DimensionFilter{{Name: aws.String("Route")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Metrics) != 1 || aws.ToString(out.Metrics[0].Namespace) != "B" {
		t.Errorf("ListMetrics with a dimension filter %+v", out.Metrics)
	}
	if _, err := c.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{}); err == nil {
		t.Error("an operation cwtest does not implement succeeded")
	}
}
