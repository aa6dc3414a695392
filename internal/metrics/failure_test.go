package metrics_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

// droppedReported sums what the server received as MetricsDropped.
func droppedReported(b *bundle) float64 {
	return b.cw.Total(b.ns, metrics.MetricsDropped, "").Sum
}

// TestCloudWatchDownBoundedThenResumes: CloudWatch fails every call for ten
// minutes. The data kept never exceed MaxPending (plus the one datum that
// reports drops), the oldest minutes go first, the number of values dropped
// is logged and counted; when CloudWatch answers again, the kept minutes
// arrive exact and the drops arrive as metrics_dropped.
func TestCloudWatchDownBoundedThenResumes(t *testing.T) {
	t.Parallel()
	const maxPending = 40 // two minutes of the 16 streams recorded below
	b := setup(t, metrics.Config{MaxPending: maxPending}, noSDKRetries)
	b.cw.Fail(cwtest.InternalError())
	t0 := b.clock.Now()
	kept := newWant()
	valuesPerMinute := 0
	for m := range 10 {
		b.clock.Set(t0.Add(time.Duration(m)*time.Minute + 10*time.Second))
		w := newWant()
		for i, rt := range defaultRoutes[:2] {
			record(b, w, rt, func(j int) time.Duration { return time.Duration(m*100+i*10+j) * time.Millisecond }, true)
		}
		valuesPerMinute = 2 * len(metrics.Metrics())
		if m >= 8 {
			maps.Copy(kept.counts, w.counts)
			maps.Copy(kept.durations, w.durations)
		}
		if err := b.agg.Flush(t.Context()); err == nil {
			t.Fatal("flush succeeded while CloudWatch fails")
		}
		if st := b.agg.Stats(); st.Pending > maxPending+1 {
			t.Fatalf("minute %d: %d data pending, bound %d", m, st.Pending, maxPending)
		}
	}
	st := b.agg.Stats()
	if want := uint64(8 * valuesPerMinute); st.Dropped != want || st.Sent != 0 || st.Failures != 10 {
		t.Fatalf("stats %+v; want %d dropped (the 8 oldest minutes), nothing sent, 10 failures", st, want)
	}
	var loggedDrops float64
	for _, l := range b.logs.Lines(t) {
		if l["message"] == "metrics flushed" {
			loggedDrops += l["dropped"].(float64)
			if l["dropped"].(float64) > 0 && l["level"] != "warn" {
				t.Errorf("a flush that dropped values logged at %v", l["level"])
			}
		}
	}
	if loggedDrops != float64(st.Dropped) {
		t.Errorf("logs report %v dropped, stats %d", loggedDrops, st.Dropped)
	}

	b.cw.Recover()
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, kept, metrics.MetricsDropped)
	if got := droppedReported(b); got != float64(st.Dropped) {
		t.Errorf("metrics_dropped sent %v, want %d", got, st.Dropped)
	}
	if st := b.agg.Stats(); st.Pending != 0 {
		t.Errorf("%d data still pending after recovery", st.Pending)
	}
}

// TestFailedCallKeptAndResent: for each way a call can fail short of being
// invalid, the data stay pending, values recorded meanwhile in the same
// minutes merge with them, and the next flush sends the exact total.
func TestFailedCallKeptAndResent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		f    cwtest.Failure
	}{
		{"throttled", cwtest.Throttling()},
		{"server fault", cwtest.InternalError()},
		{"unavailable", cwtest.Unavailable()},
		{"no answer", cwtest.Hang()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The hanging call ends at SendTimeout; the calls that must
			// succeed are bounded by it too. 1s, not 100ms: a call takes
			// a few ms under -race, but 50ms was seen with the machine loaded.
			b := setup(t, metrics.Config{SendTimeout: time.Second}, noSDKRetries)
			w := newWant()
			gen := func(j int) time.Duration { return time.Duration(j+1) * time.Millisecond }
			for _, rt := range defaultRoutes {
				record(b, w, rt, gen, true)
			}
			b.cw.FailNext(1, tc.f)
			if err := b.agg.Flush(t.Context()); err == nil {
				t.Fatal("flush succeeded while CloudWatch failed")
			}
			if st := b.agg.Stats(); st.Pending != len(w.durations)+len(w.counts) || st.Dropped != 0 {
				t.Fatalf("stats %+v; want every datum kept", st)
			}
			for _, rt := range defaultRoutes {
				record(b, w, rt, gen, true)
			}
			if err := b.agg.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkExact(t, b.cw, w)
		})
	}
}

// TestInvalidCallDroppedNotRetried: a call CloudWatch refuses as invalid can
// never succeed; its values are dropped and reported, not resent forever.
func TestInvalidCallDroppedNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{}, noSDKRetries)
	w := newWant()
	record(b, w, defaultRoutes[0], func(j int) time.Duration { return time.Millisecond }, true)
	b.cw.FailNext(1, cwtest.InvalidParameter("The value ... is invalid"))
	err := b.agg.Flush(t.Context())
	var ipv *types.InvalidParameterValueException
	if !errors.As(err, &ipv) {
		t.Fatalf("flush: %v; want the InvalidParameterValue error", err)
	}
	st := b.agg.Stats()
	if st.Dropped != uint64(len(metrics.Metrics())) || st.Pending != 1 {
		t.Fatalf("stats %+v; want %d dropped and only the drop report pending", st, len(metrics.Metrics()))
	}
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if data := b.cw.Data(); len(data) != 1 || data[0].MetricName != metrics.MetricsDropped || *data[0].Value != float64(st.Dropped) {
		t.Errorf("after the refused call, sent %+v; want only metrics_dropped = %d", data, st.Dropped)
	}
}

// TestOldMinutesDropped: values older than CloudWatch accepts (two weeks)
// are dropped, not sent, and reported.
func TestOldMinutesDropped(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{})
	b.cw.SetNow(b.clock.Now)
	old := newWant()
	record(b, old, defaultRoutes[1], func(int) time.Duration { return time.Second }, true)
	b.clock.Set(b.clock.Now().Add(14 * 24 * time.Hour))
	w := newWant()
	record(b, w, defaultRoutes[0], func(int) time.Duration { return time.Second }, true)
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.agg.Flush(t.Context()); err != nil { // sends the drop report
		t.Fatal(err)
	}
	checkExact(t, b.cw, w, metrics.MetricsDropped)
	if got, st := droppedReported(b), b.agg.Stats(); got != float64(len(metrics.Metrics())) || st.Dropped != uint64(got) {
		t.Errorf("metrics_dropped %v, stats %+v; want %d", got, st, len(metrics.Metrics()))
	}
}

// TestRecordingNeverWaitsForCloudWatch: while a flush hangs inside a call,
// 100,000 values are recorded from many goroutines and Stats answers; the
// test would time out if recording waited for the flush.
func TestRecordingNeverWaitsForCloudWatch(t *testing.T) {
	t.Parallel()
	b := setup(t, metrics.Config{SendTimeout: time.Hour}, noSDKRetries)
	w := newWant()
	record(b, w, defaultRoutes[0], func(int) time.Duration { return time.Millisecond }, true)
	b.cw.Fail(cwtest.Hang())
	ctx, cancel := context.WithCancel(t.Context())
	flushed := make(chan error, 1)
	go func() { flushed <- b.agg.Flush(ctx) }()
	if err := b.cw.WaitRequests(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			gw := newWant()
			for i := range 12_500 {
				record(b, gw, defaultRoutes[(g+i)%len(defaultRoutes)], func(j int) time.Duration { return time.Duration(i%200+j) * time.Microsecond }, true)
			}
			mu.Lock()
			defer mu.Unlock()
			for k, ds := range gw.durations {
				w.durations[k] = append(w.durations[k], ds...)
			}
			for k, n := range gw.counts {
				w.counts[k] += n
			}
		})
	}
	wg.Wait()
	if st := b.agg.Stats(); st.Recorded != uint64(len(metrics.Metrics())*(1+8*12_500)) {
		t.Errorf("recorded %d while the flush hung", st.Recorded)
	}
	select {
	case err := <-flushed:
		t.Fatalf("flush returned %v before its call was cancelled", err)
	default:
	}
	cancel()
	if err := <-flushed; !errors.Is(err, context.Canceled) {
		t.Fatalf("hanging flush: %v; want context.Canceled", err)
	}
	b.cw.Recover()
	if err := b.agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, b.cw, w)
}

// TestLogLevelHonoured: with the logger at warn (LOG_LEVEL=warn) a normal
// flush logs nothing; a flush that drops values still says so.
func TestLogLevelHonoured(t *testing.T) {
	t.Parallel()
	cw := cwtest.New(t)
	logs := &logBuffer{}
	agg, err := metrics.New(cw.Client(noSDKRetries), metrics.Config{
		Namespace: "Test/LogLevel",
		Logger:    zerolog.New(logs).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	agg.Count(metrics.MessagesProcessed, "general", 1)
	if err := agg.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := logs.Lines(t); len(l) != 0 {
		t.Errorf("at warn, a normal flush logged %v", l)
	}
	agg.Count(metrics.MessagesProcessed, "general", 1)
	cw.FailNext(1, cwtest.InvalidParameter("refused"))
	if err := agg.Flush(t.Context()); err == nil {
		t.Fatal("flush succeeded")
	}
	l := logs.Lines(t)
	if len(l) != 1 || l[0]["level"] != "warn" || l[0]["dropped"] != 1.0 {
		t.Errorf("at warn, a flush that dropped a value logged %v", l)
	}
}
