package metrics_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m,
		// kumo's services start their background janitors at package init.
		goleak.IgnoreCurrent(),
		// The SDK's pooled HTTP connections close after the tests' end.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// clock is the injected clock: tests move it; nothing sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// logBuffer collects the aggregator's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines returns the log lines, decoded.
func (b *logBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// bundle is one test's aggregator, test server, clock and logs.
type bundle struct {
	cw    *cwtest.Server
	clock *clock
	agg   *metrics.Aggregator
	ns    string
	logs  *logBuffer
}

// start is where test clocks start: a whole minute ten minutes ago, so that
// a few simulated minutes stay in the past the server accepts.
func start() time.Time { return time.Now().Truncate(time.Minute).Add(-10 * time.Minute) }

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// setup builds a fresh bundle. cfg's Namespace, Now and Logger are filled in
// when unset. Client options apply to the SDK client (e.g. fewer retries).
func setup(t *testing.T, cfg metrics.Config, opts ...func(*cloudwatch.Options)) *bundle {
	t.Helper()
	b := &bundle{cw: cwtest.New(t), clock: &clock{t: start()}, logs: &logBuffer{}}
	if cfg.Namespace == "" {
		cfg.Namespace = "Test/" + nonName.ReplaceAllString(t.Name(), "-")
	}
	b.ns = cfg.Namespace
	if cfg.Now == nil {
		cfg.Now = b.clock.Now
	}
	cfg.Logger = zerolog.New(b.logs).Level(zerolog.DebugLevel)
	agg, err := metrics.New(b.cw.Client(opts...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.agg = agg
	return b
}

// noSDKRetries leaves retrying to the aggregator, so failure tests do not
// wait for the SDK's back-off.
func noSDKRetries(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 }

// want is the test's own account of what was recorded, per stream and
// minute, computed without the package.
type want struct {
	durations map[cwtest.Key][]time.Duration
	counts    map[cwtest.Key]float64
}

func newWant() *want {
	return &want{durations: map[cwtest.Key][]time.Duration{}, counts: map[cwtest.Key]float64{}}
}

// key is the stream-minute a value recorded at `at` lands in; route is the
// value expected in CloudWatch ("" for metrics without Route).
func key(ns, name, route string, at time.Time, timestamps bool) cwtest.Key {
	k := cwtest.Key{Namespace: ns, MetricName: name}
	if route != "" {
		k.Dimensions = cwtest.Dims("Route", route)
	}
	if timestamps {
		k.Timestamp = at.Truncate(time.Minute).UTC()
	}
	return k
}

// checkExact compares what the server received with w: every stream-minute,
// nothing else, with exact SampleCount, Minimum, Maximum and (up to float64
// rounding) Sum, and the exact distribution where it has at most 150
// distinct values.
func checkExact(t *testing.T, cw *cwtest.Server, w *want, skip ...string) {
	t.Helper()
	got := cw.Aggregates()
	for k, a := range got {
		if _, ok := w.durations[k]; ok {
			continue
		}
		if _, ok := w.counts[k]; ok {
			continue
		}
		if !strings.Contains(strings.Join(skip, ","), k.MetricName) {
			t.Errorf("unexpected datum %+v: %+v", k, a)
		}
	}
	for k, c := range w.counts {
		a, ok := got[k]
		if !ok {
			t.Errorf("%+v: not sent", k)
			continue
		}
		if a.Sum != c || a.StatisticSets != 0 || len(a.Units) != 1 || a.Units[0] != "Count" {
			t.Errorf("%+v: Sum %v (%d StatisticValues, units %v), want %v Count", k, a.Sum, a.StatisticSets, a.Units, c)
		}
	}
	for k, ds := range w.durations {
		a, ok := got[k]
		if !ok {
			t.Errorf("%+v: not sent", k)
			continue
		}
		checkDurations(t, k, a, ds)
	}
}

func checkDurations(t *testing.T, k cwtest.Key, a cwtest.Aggregate, ds []time.Duration) {
	t.Helper()
	var sum float64
	lo, hi := ds[0], ds[0]
	dist := map[float64]float64{}
	for _, d := range ds {
		v := float64(d.Nanoseconds()) / 1e6
		sum += v
		lo, hi = min(lo, d), max(hi, d)
		dist[v]++
	}
	if a.SampleCount != float64(len(ds)) ||
		a.Minimum != float64(lo.Nanoseconds())/1e6 || a.Maximum != float64(hi.Nanoseconds())/1e6 ||
		!near(a.Sum, sum) {
		t.Errorf("%+v: SampleCount %v Sum %v Minimum %v Maximum %v; want %d %v %v %v",
			k, a.SampleCount, a.Sum, a.Minimum, a.Maximum, len(ds), sum, float64(lo.Nanoseconds())/1e6, float64(hi.Nanoseconds())/1e6)
	}
	if a.StatisticSets != 0 || len(a.Units) != 1 || a.Units[0] != "Milliseconds" {
		t.Errorf("%+v: %d StatisticValues, units %v; want Values/Counts in Milliseconds", k, a.StatisticSets, a.Units)
	}
	if len(dist) <= cwtest.MaxValuesPerDatum && a.Data == 1 {
		if len(a.Distribution) != len(dist) {
			t.Errorf("%+v: %d distinct values sent, want the exact %d", k, len(a.Distribution), len(dist))
		}
		for v, n := range dist {
			if a.Distribution[v] != n {
				t.Errorf("%+v: value %v sent %v times, want %v", k, v, a.Distribution[v], n)
			}
		}
	}
}

// near tells whether two sums agree up to float64 rounding.
func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	m := max(a, b, -a, -b)
	return d <= 1e-9*m+1e-12
}
