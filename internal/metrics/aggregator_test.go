package metrics_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

// route is a route as given to the aggregator and as CloudWatch must see it.
type route struct{ given, sent string }

// defaultRoutes covers the known routes and everything folded into other.
var defaultRoutes = []route{
	{"odoo_erp", "odoo_erp"}, {"general", "general"}, {"billing", "other"}, {"", "other"}, {"other", "other"}, {"GENERAL", "other"},
}

// record records one value of every contract metric for rt at the clock's
// time, and notes it in w. Durations come from gen(metric index).
func record(b *bundle, w *want, rt route, gen func(i int) time.Duration, timestamps bool) {
	at := b.clock.Now()
	for i, m := range metrics.Metrics() {
		sent := rt.sent
		if !m.Route {
			sent = ""
		}
		k := key(b.ns, m.Name, sent, at, timestamps)
		if m.Kind == metrics.KindDuration {
			d := gen(i)
			b.agg.Duration(m.Name, rt.given, d)
			w.durations[k] = append(w.durations[k], d)
			continue
		}
		n := float64(i%3 + 1)
		b.agg.Count(m.Name, rt.given, n)
		w.counts[k] += n
	}
}

// TestRealCloudWatchPath proves the path real CloudWatch takes: timestamps
// on, request bodies gzip-compressed by the SDK, every stream-minute one
// datum stamped with its minute's start and carrying exact aggregates —
// the exact distribution where a minute has at most 150 distinct values,
// exact count, minimum, maximum and sum where it has more.
func TestRealCloudWatchPath(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	w := newWant()
	r := rand.New(rand.NewPCG(1, 1))
	pool := make([]time.Duration, 100)
	for i := range pool {
		pool[i] = time.Duration(r.Int64N(int64(2 * time.Second)))
	}
	gen := func(i int) time.Duration {
		if i%2 == 0 { // at most 100 distinct values: sent exactly
			return pool[r.IntN(len(pool))]
		}
		return time.Duration(math.Exp(r.NormFloat64()+3.5) * float64(time.Millisecond)) // bucketed
	}
	t0 := b.clock.Now()
	records := 0
	for minute := range 3 {
		for i := range 600 {
			b.clock.Set(t0.Add(time.Duration(minute)*time.Minute + time.Duration(i)*90*time.Millisecond))
			record(b, w, defaultRoutes[i%len(defaultRoutes)], gen, true)
			records += len(metrics.Metrics())
		}
	}
	b.clock.Set(t0.Add(3*time.Minute + time.Second))
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)

	calls := b.cw.Calls()
	compressed := 0
	for _, c := range calls {
		if c.Compressed {
			compressed++
		} else if c.BodyBytes >= 10240 {
			t.Errorf("a %d-byte body went uncompressed; the SDK compresses from 10 KiB", c.BodyBytes)
		}
		for _, d := range c.Data {
			if d.Timestamp == nil || !d.Timestamp.Equal(d.Timestamp.Truncate(time.Minute)) {
				t.Errorf("%s: timestamp %v, want its minute's start", d.MetricName, d.Timestamp)
			}
		}
	}
	if compressed == 0 {
		t.Error("no call came gzip-compressed: the real-CloudWatch path was not exercised")
	}
	data := len(w.durations) + len(w.counts)
	st := b.agg.Stats()
	if st.Recorded != uint64(records) || st.Sent != uint64(data) || st.Calls != uint64(len(calls)) || st.Calls != 1 ||
		st.Dropped != 0 || st.Failures != 0 || st.Pending != 0 {
		t.Errorf("stats %+v; want %d recorded, %d sent in 1 call", st, records, data)
	}

	lines := b.logs.Lines(t)
	if len(lines) != 1 {
		t.Fatalf("want one log line per flush, got %v", lines)
	}
	l := lines[0]
	if l["level"] != "info" || l["message"] != "metrics flushed" ||
		l["data_sent"] != float64(data) || l["calls"] != 1.0 || l["dropped"] != 0.0 || l["pending"] != 0.0 {
		t.Errorf("flush log line %v", l)
	}
}

// TestManyValuesFewCalls records 100,000 values from many goroutines over
// several routes and three flush intervals, and counts the calls: no more
// than ceil(data/1000) per flush. Aggregates stay exact, every datum within
// 150 values, and percentiles computed from the distribution stay within
// 10% of the true ones.
func TestManyValuesFewCalls(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	const (
		total      = 100_000
		flushes    = 4
		goroutines = 25
	)
	all := metrics.Metrics()
	w := newWant()
	t0 := b.clock.Now()
	allowed := 0
	for f := range flushes {
		b.clock.Set(t0.Add(time.Duration(f)*time.Minute + 30*time.Second))
		at := b.clock.Now()
		wants := make([]*want, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wants[g] = newWant()
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(f), uint64(g)))
				gw := wants[g]
				for range total / flushes / goroutines {
					m := all[r.IntN(len(all))]
					rt := defaultRoutes[r.IntN(len(defaultRoutes))]
					sent := rt.sent
					if !m.Route {
						sent = ""
					}
					k := key(b.ns, m.Name, sent, at, true)
					if m.Kind == metrics.KindDuration {
						d := time.Duration(math.Exp(r.NormFloat64()*1.2+math.Log(40)) * float64(time.Millisecond))
						b.agg.Duration(m.Name, rt.given, d)
						gw.durations[k] = append(gw.durations[k], d)
					} else {
						b.agg.Count(m.Name, rt.given, 1)
						gw.counts[k]++
					}
				}
			})
		}
		wg.Wait()
		before := b.agg.Stats()
		if err := b.agg.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		after := b.agg.Stats()
		data := int(after.Sent - before.Sent)
		if calls := int(after.Calls - before.Calls); calls > (data+999)/1000 {
			t.Errorf("flush %d: %d calls for %d data", f, calls, data)
		}
		allowed += (data + 999) / 1000
		for _, gw := range wants {
			for k, ds := range gw.durations {
				w.durations[k] = append(w.durations[k], ds...)
			}
			for k, n := range gw.counts {
				w.counts[k] += n
			}
		}
	}
	checkExact(t, b.cw, w)
	st := b.agg.Stats()
	const recorded = total
	if st.Recorded != uint64(recorded) || int(st.Calls) > allowed || len(b.cw.Calls()) != int(st.Calls) {
		t.Errorf("stats %+v, server saw %d calls; want %d recorded in at most %d calls", st, len(b.cw.Calls()), recorded, allowed)
	}
	t.Logf("%d values, %d flushes: %d calls, %d data", recorded, flushes, st.Calls, st.Sent)

	// Percentiles of one busy stream-minute, as CloudWatch computes them
	// from the Values/Counts it received.
	k := key(b.ns, metrics.HandlerTotalDuration, "other", t0.Add(30*time.Second), true)
	ds := slices.Sorted(slices.Values(w.durations[k]))
	got := b.cw.Aggregates()[k]
	if len(got.Distribution) > cwtest.MaxValuesPerDatum || len(ds) < 1000 {
		t.Fatalf("%d values in %d distinct: the stream should be bucketed", len(ds), len(got.Distribution))
	}
	for _, p := range []float64{50, 95, 99} {
		truth := float64(ds[int(math.Ceil(p/100*float64(len(ds))))-1].Nanoseconds()) / 1e6
		if rel := math.Abs(got.Percentile(p)-truth) / truth; rel > 0.10 {
			t.Errorf("p%v = %v, true %v (off by %.1f%%)", p, got.Percentile(p), truth, 100*rel)
		}
	}
}

// TestBatchesOfAtMost1000Data: 1208 data in one flush go in exactly two
// calls, none above 1000 data (the server refuses more).
func TestBatchesOfAtMost1000Data(t *testing.T) {
	t.Parallel()
	var rts []route
	var names []string
	for i := range metrics.MaxRoutes {
		names = append(names, fmt.Sprintf("r%02d", i))
		rts = append(rts, route{names[i], names[i]})
	}
	b := setup(t, metrics.Config{Routes: names})
	w := newWant()
	t0 := b.clock.Now()
	for minute := range 2 {
		b.clock.Set(t0.Add(time.Duration(minute) * time.Minute))
		for i, rt := range rts {
			record(b, w, rt, func(j int) time.Duration { return time.Duration(i*10+j) * time.Millisecond }, true)
		}
	}
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
	data := len(w.durations) + len(w.counts)
	calls := b.cw.Calls()
	if data != 1208 || len(calls) != 2 || len(calls[0].Data) != 1000 {
		t.Errorf("%d data went in %d calls (first %d); want 1208 in 2, the first full", data, len(calls), len(calls[0].Data))
	}
}

// TestRequestsStayUnder1MB: 401 data of 150 values each (about 1.1 MB of
// CBOR) are split by size, not count, and each body stays under the budget
// the aggregator estimates for, 90% of CloudWatch's 1 MB.
func TestRequestsStayUnder1MB(t *testing.T) {
	t.Parallel()
	var names []string
	for i := range metrics.MaxRoutes {
		names = append(names, fmt.Sprintf("route-%02d", i))
	}
	b := setup(t, metrics.Config{Routes: names})
	w := newWant()
	r := rand.New(rand.NewPCG(9, 9))
	at := b.clock.Now()
	for _, name := range names {
		for _, m := range metrics.Metrics() {
			if m.Kind != metrics.KindDuration {
				continue
			}
			sent := name
			if !m.Route {
				sent = ""
			}
			k := key(b.ns, m.Name, sent, at, true)
			for range 400 {
				d := time.Duration(r.Int64N(int64(time.Second)))
				b.agg.Duration(m.Name, name, d)
				w.durations[k] = append(w.durations[k], d)
			}
		}
	}
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
	calls := b.cw.Calls()
	total := 0
	for _, c := range calls {
		total += c.BodyBytes
		if c.BodyBytes > metrics.MaxRequestBytes/10*9 {
			t.Errorf("a body of %d bytes: the size estimate is not an upper bound", c.BodyBytes)
		}
	}
	if len(w.durations) != 401 || len(calls) != 2 || total < metrics.MaxRequestBytes {
		t.Errorf("%d data, %d bytes in %d calls; want 401 data over 1 MB in 2 calls", len(w.durations), total, len(calls))
	}
}

// TestCardinalityGuard: only the contract's dimensions reach CloudWatch;
// unknown routes fold into other, metrics without Route get no dimension,
// and values that name no contract metric (or the wrong kind) are refused
// and counted. ListMetrics through the SDK shows exactly the expected set.
func TestCardinalityGuard(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	for _, r := range []string{"odoo_erp", "general", "billing", "", "General", "other"} {
		b.agg.Duration(metrics.HandlerTotalDuration, r, time.Millisecond)
		b.agg.Count(metrics.MessagesProcessed, r, 1)
	}
	b.agg.Duration(metrics.QueueWaitDuration, "general", time.Second)
	b.agg.Count(metrics.MessagesRejected, "odoo_erp", 1)
	invalid := []func(){
		func() { b.agg.Duration("unknown_metric", "general", time.Millisecond) },
		func() { b.agg.Duration(metrics.MessagesProcessed, "general", time.Millisecond) },
		func() { b.agg.Count(metrics.HandlerTotalDuration, "general", 1) },
		func() { b.agg.Count(metrics.MessagesFailed, "", -1) },
		func() { b.agg.Count(metrics.MessagesFailed, "", math.NaN()) },
		func() { b.agg.Count(metrics.MessagesFailed, "", math.Inf(1)) },
		func() { b.agg.Count(metrics.MetricsDropped, "", 1) },
	}
	for _, f := range invalid {
		f()
	}
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := b.cw.Client().ListMetrics(t.Context(), &cloudwatch.ListMetricsInput{Namespace: aws.String(b.ns)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range out.Metrics {
		var dims []string
		for _, d := range m.Dimensions {
			dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
		}
		got = append(got, aws.ToString(m.MetricName)+"{"+strings.Join(dims, ",")+"}")
	}
	slices.Sort(got)
	want := []string{
		"handler_total_duration{Route=general}", "handler_total_duration{Route=odoo_erp}", "handler_total_duration{Route=other}",
		"messages_processed{Route=general}", "messages_processed{Route=odoo_erp}", "messages_processed{Route=other}",
		"messages_rejected{}", "queue_wait_duration{}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListMetrics = %v\nwant %v", got, want)
	}
	if other := b.cw.Total(b.ns, metrics.HandlerTotalDuration, cwtest.Dims("Route", "other")); other.SampleCount != 4 {
		t.Errorf("other route got %v values, want 4 (billing, empty, General, other)", other.SampleCount)
	}
	if st := b.agg.Stats(); st.Invalid != uint64(len(invalid)) || st.Recorded != 14 {
		t.Errorf("stats %+v; want %d invalid, 14 recorded", st, len(invalid))
	}
}

// TestTimestampsOmitted: with OmitTimestamps (METRICS_TIMESTAMPS=false, for
// kumo) no datum carries a timestamp, and the aggregates are as exact.
func TestTimestampsOmitted(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{OmitTimestamps: true})
	w := newWant()
	for i, rt := range defaultRoutes {
		record(b, w, rt, func(j int) time.Duration { return time.Duration(i+j) * time.Millisecond }, false)
	}
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
	for _, d := range b.cw.Data() {
		if d.Timestamp != nil {
			t.Errorf("%s carries timestamp %v", d.MetricName, d.Timestamp)
		}
	}
}

func TestNilAggregatorIsDisabled(t *testing.T) {
	t.Parallel()
	var a *metrics.Aggregator
	a.Duration(metrics.HandlerTotalDuration, "general", time.Second)
	a.Count(metrics.MessagesProcessed, "general", 1)
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st != (metrics.Stats{}) {
		t.Errorf("stats %+v", st)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	cw := cwtest.New(t)
	for _, tc := range []struct {
		name string
		cfg  metrics.Config
		want string
	}{
		{"AWS namespace", metrics.Config{Namespace: "AWS/EC2"}, "Namespace"},
		{"long namespace", metrics.Config{Namespace: strings.Repeat("n", 256)}, "Namespace"},
		{"negative interval", metrics.Config{FlushInterval: -time.Second}, "FlushInterval"},
		{"negative send timeout", metrics.Config{SendTimeout: -1}, "SendTimeout"},
		{"negative final timeout", metrics.Config{FinalFlushTimeout: -1}, "FinalFlushTimeout"},
		{"negative retry", metrics.Config{RetryMin: -1}, "RetryMin"},
		{"negative pending", metrics.Config{MaxPending: -1}, "MaxPending"},
		{"pending below one minute", metrics.Config{MaxPending: 10}, "MaxPending"},
		{"empty route", metrics.Config{Routes: []string{"a", ""}}, "empty"},
		{"duplicate route", metrics.Config{Routes: []string{"a", "a"}}, "twice"},
		{"long route", metrics.Config{Routes: []string{strings.Repeat("r", 1025)}}, "1024"},
		{"too many routes", metrics.Config{Routes: func() []string {
			var r []string
			for i := range metrics.MaxRoutes + 1 {
				r = append(r, fmt.Sprint(i))
			}
			return r
		}()}, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := metrics.New(cw.Client(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v; want an error naming %q", err, tc.want)
			}
		})
	}
	if _, err := metrics.New(nil, metrics.Config{}); err == nil {
		t.Error("New with no client: no error")
	}
	if _, err := metrics.New(cw.Client(), metrics.Config{}); err != nil {
		t.Errorf("the zero Config: %v", err)
	}
}

// TestConsumerEvents: the consumer's Observer events land in their metrics.
func TestConsumerEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	at := b.clock.Now()
	b.agg.MessageReceived(250 * time.Millisecond)
	b.agg.MessageReceived(750 * time.Millisecond)
	b.agg.MessageRejected()
	b.agg.MessageFailed()
	b.agg.MessageFailed()
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := newWant()
	w.durations[key(b.ns, metrics.QueueWaitDuration, "", at, true)] = []time.Duration{250 * time.Millisecond, 750 * time.Millisecond}
	w.counts[key(b.ns, metrics.MessagesRejected, "", at, true)] = 1
	w.counts[key(b.ns, metrics.MessagesFailed, "", at, true)] = 2
	checkExact(t, b.cw, w)
	var nilAgg *metrics.Aggregator
	nilAgg.MessageReceived(time.Second)
	nilAgg.MessageRejected()
	nilAgg.MessageFailed()
}
