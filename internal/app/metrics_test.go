package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/store"
)

// faultyStore is the real Weaviate store with two injected faults: the
// first Put of one event fails (the message is left for retry), and every
// relevance search of one chat fails (its results are degraded).
type faultyStore struct {
	*store.Store
	failPutOnce   string // event id
	failRelevance string // chat id

	mu     sync.Mutex
	failed bool
}

var errInjected = errors.New("injected by the test")

func (s *faultyStore) Put(ctx context.Context, ev event.Event) error {
	s.mu.Lock()
	fail := ev.EventID == s.failPutOnce && !s.failed
	s.failed = s.failed || fail
	s.mu.Unlock()
	if fail {
		// Weaviate refusing the request itself: the consumer gives the
		// message back (a failed message), where a transient failure would
		// be retried in place.
		return &store.Error{Kind: store.KindRejected, Err: errInjected}
	}
	return s.Store.Put(ctx, ev)
}

func (s *faultyStore) Relevant(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error) {
	if chatID == s.failRelevance {
		return nil, errInjected
	}
	return s.Store.Relevant(ctx, chatID, text, before, limit)
}

// metricSeries is one metric stream as ListMetrics names it.
type metricSeries struct{ name, dims string }

func listMetrics(t *testing.T, e *stacktest.Env) []metricSeries {
	t.Helper()
	var out []metricSeries
	in := &cloudwatch.ListMetricsInput{Namespace: aws.String(e.Config.MetricsNamespace)}
	for {
		page, err := e.CloudWatch.ListMetrics(t.Context(), in)
		if err != nil {
			t.Fatalf("ListMetrics: %v", err)
		}
		for _, m := range page.Metrics {
			var dims []string
			for _, d := range m.Dimensions {
				dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
			}
			slices.Sort(dims)
			out = append(out, metricSeries{aws.ToString(m.MetricName), strings.Join(dims, ",")})
		}
		if page.NextToken == nil {
			break
		}
		in.NextToken = page.NextToken
	}
	slices.SortFunc(out, func(a, b metricSeries) int { return strings.Compare(a.name+" "+a.dims, b.name+" "+b.dims) })
	return out
}

// sum is the Sum of a count metric's data in the namespace since from, as
// kumo keeps it (it keeps a count datum's Value exactly).
func sum(t *testing.T, e *stacktest.Env, name, route string, from time.Time) float64 {
	t.Helper()
	in := &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String(e.Config.MetricsNamespace), MetricName: aws.String(name),
		StartTime: aws.Time(from.Add(-time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		Period: aws.Int32(60), Statistics: []types.Statistic{types.StatisticSum},
	}
	if route != "" {
		in.Dimensions = []types.Dimension{{Name: aws.String(metrics.RouteDimension), Value: aws.String(route)}}
	}
	out, err := e.CloudWatch.GetMetricStatistics(t.Context(), in)
	if err != nil {
		t.Fatalf("GetMetricStatistics %s: %v", name, err)
	}
	var s float64
	for _, dp := range out.Datapoints {
		s += aws.ToFloat64(dp.Sum)
	}
	return s
}

// TestMetricsReachCloudWatch runs the worker against kumo over events that
// produce every metric of the contract (two routes, a muted chat, poison
// events, a degraded result, a message whose store fails once) with a flush
// interval longer than the test: nothing reaches CloudWatch while it runs,
// and the flush at shutdown sends it all: ListMetrics then shows exactly the
// contract's metrics, with the Route dimension on the six that carry it and
// none on the other four, and the counts add up to what the results show.
// The worker logs at LOG_LEVEL=warn: no per-event or flush lines.
func TestMetricsReachCloudWatch(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.With("METRICS_FLUSH_INTERVAL", "1h", "SHUTDOWN_TIMEOUT", shortPolls))
	odoo, gen, muted, deg, fail := e.ChatID("odoo"), e.ChatID("general"), e.ChatID("muted"), e.ChatID("degraded"), e.ChatID("fails-once")
	st, err := store.New(store.Config{URL: e.Config.WeaviateURL, GRPCAddr: e.Config.WeaviateGRPCAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close) // after the worker stopped (cleanups run last-in first-out)
	fs := &faultyStore{Store: st, failPutOnce: "f1", failRelevance: deg}

	msgs := []stacktest.Msg{
		stacktest.Event(chatEvent(odoo, "o1", "user", "Status of S00042?", 0)),
		stacktest.Event(chatEvent(odoo, "o2", "user", "And invoice INV/2026/00017?", 1)),
		stacktest.Event(chatEvent(gen, "g1", "user", "Opening hours?", 0)),
		stacktest.Event(chatEvent(gen, "g2", "assistant", "We open at eight.", 1)),
		stacktest.Event(chatEvent(gen, "g3", "user", "Parking for visitors?", 2)),
		stacktest.Event(map[string]any{"event_id": "mute", "chat_id": muted, "type": "mute"}),
		stacktest.Event(chatEvent(muted, "m1", "user", "Hello, anyone?", 0)),
		stacktest.Event(chatEvent(deg, "d1", "user", "Where is WH/OUT/00005?", 0)),
		stacktest.Event(chatEvent(fail, "f1", "user", "Thanks for the help!", 0)),
		{Body: "not json at all", Group: e.ChatID("poison"), Dedup: "p1"},
		stacktest.Event(map[string]any{"event_id": "p2", "chat_id": e.ChatID("poison"), "sent_at": "2026-11-28T08:00:00Z"}), // no text
	}
	const users, poison = 7, 2

	from := time.Now()
	w := startWorker(t, e.Config, app.Options{Store: fs})
	e.Send(t, msgs...)
	results := e.Results(t, users, resultTimeout)
	e.DeadLetters(t, poison, resultTimeout)
	if got := listMetrics(t, e); len(got) != 0 {
		t.Errorf("metrics sent before the flush interval and before shutdown: %v", got)
	}

	if err := w.stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}

	// What the results say, computed from them alone.
	processed := map[string]float64{}
	degraded := map[string]float64{}
	var mutedResults float64
	for _, r := range results {
		processed[r.Route]++
		if len(r.Degraded) > 0 {
			degraded[r.Route]++
		}
		if r.Muted {
			mutedResults++
		}
	}
	if processed["odoo_erp"] != 3 || processed["general"] != 4 || degraded["odoo_erp"] != 1 || len(degraded) != 1 || mutedResults != 1 {
		t.Fatalf("the events did not turn out as designed: processed %v, degraded %v, muted %v", processed, degraded, mutedResults)
	}

	var want []metricSeries
	for _, m := range metrics.Metrics() {
		switch {
		case m.Name == metrics.MessagesDegraded:
			want = append(want, metricSeries{m.Name, "Route=odoo_erp"})
		case m.Route:
			want = append(want, metricSeries{m.Name, "Route=general"}, metricSeries{m.Name, "Route=odoo_erp"})
		default:
			want = append(want, metricSeries{m.Name, ""})
		}
	}
	slices.SortFunc(want, func(a, b metricSeries) int { return strings.Compare(a.name+" "+a.dims, b.name+" "+b.dims) })
	if got := listMetrics(t, e); !slices.Equal(got, want) {
		t.Errorf("ListMetrics after shutdown:\n got %v\nwant %v", got, want)
	}

	for _, c := range []struct {
		name, route string
		want        float64
	}{
		{metrics.MessagesProcessed, "odoo_erp", processed["odoo_erp"]},
		{metrics.MessagesProcessed, "general", processed["general"]},
		{metrics.MessagesDegraded, "odoo_erp", degraded["odoo_erp"]},
		{metrics.MessagesMuted, "", mutedResults},
		{metrics.MessagesRejected, "", poison},
		{metrics.MessagesFailed, "", 1},
	} {
		if got := sum(t, e, c.name, c.route, from); got != c.want {
			t.Errorf("%s[%s]: sum %v, want %v", c.name, c.route, got, c.want)
		}
	}

	// LOG_LEVEL=warn: the failed store is logged, per-event and flush
	// lines are not; and no text anywhere.
	lines := w.logs.Lines()
	for _, l := range lines {
		if l.Level() != "warn" && l.Level() != "error" {
			t.Errorf("line below warn at LOG_LEVEL=warn: %s", l.Raw)
		}
	}
	if n := logtest.Count(lines, "handler failed: message left for redelivery", ""); n != 1 {
		t.Errorf("%d warnings about the failed handler, want 1", n)
	}
	var texts []string
	for _, m := range msgs {
		if ev, err := event.Decode([]byte(m.Body)); err == nil && ev.Text != "" {
			texts = append(texts, ev.Text)
		}
	}
	logtest.CheckNoText(t, lines, texts)
}
