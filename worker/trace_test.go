package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/store/storetest"
)

// producer is a service upstream of the worker, exporting its own spans
// to j: it sends events with its span's traceparent, as a webhook would.
type producer struct {
	tp *sdktrace.TracerProvider
}

func newProducer(t *testing.T, j *devstack.Jaeger) *producer {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(j.OTLPURL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	return &producer{tp: sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "webhook"))))}
}

// send returns m carrying the traceparent of a new producer span, which it
// ends and exports, and that span.
func (p *producer) send(m stacktest.Msg) (stacktest.Msg, trace.SpanContext) {
	ctx, span := p.tp.Tracer("webhook").Start(context.Background(), "enqueue", trace.WithSpanKind(trace.SpanKindProducer))
	m.Attributes = map[string]string{}
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(m.Attributes))
	span.End()
	return m, span.SpanContext()
}

// failMutedLookups is a proxy in front of Weaviate's REST API that answers
// 503 to the muted-state lookup of chat, and passes everything else.
func failMutedLookups(t *testing.T, weaviateURL, chat string) string {
	t.Helper()
	target, err := url.Parse(weaviateURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	bad := "/v1/objects/" + store.StateCollection + "/" + store.StateID(chat)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == bad {
			http.Error(w, `{"error":[{"message":"injected by the test"}]}`, http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitTrace reads a trace from Jaeger until it has n spans.
func waitTrace(t *testing.T, j *devstack.Jaeger, id string, n int) *devstack.TraceData {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tr, err := j.Trace(t.Context(), id)
		if err == nil && len(tr.Spans) >= n {
			return tr
		}
		if err != nil && !errors.Is(err, devstack.ErrNoTrace) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans after 30s, want %d (%v)", id, len(spansOf(tr)), n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func spansOf(tr *devstack.TraceData) []devstack.SpanData {
	if tr == nil {
		return nil
	}
	return tr.Spans
}

func waterfall(tr *devstack.TraceData) string {
	var b strings.Builder
	tr.Waterfall(&b, 48)
	return b.String()
}

// TestTracesInJaeger runs the worker binary on kumo and Weaviate with its
// traces going to a real Jaeger, with a batch schedule longer than the run:
// every span arrives with the shutdown's flush. A producer's span is the
// parent of each event span; each task and the publish is a child of the
// event span; the result's traceparent names the event span; the log line
// has the trace id; no message text is anywhere in a trace. A failed
// muted-state lookup is an error span with the result's reason; a muted
// chat's retrievals are cancelled or done, never errors.
func TestTracesInJaeger(t *testing.T) {
	t.Parallel()
	j := stacktest.Jaeger(t)
	e := stacktest.New(t, stacktest.With(
		"OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPURL,
		"OTEL_BSP_SCHEDULE_DELAY", "3600000", // nothing leaves before the shutdown
		"LOG_LEVEL", "info",
		// Past any task here: a task timed out on a loaded machine (2s by
		// default) would be a failed span, and a store timed out a second
		// delivery with its own spans in the producer's trace. The one
		// failure the test wants is the muted lookup's 503.
		"TASK_TIMEOUT", "1m",
	))
	degradedChat := e.ChatID("degraded")
	e.Vars["WEAVIATE_URL"] = failMutedLookups(t, e.Config.WeaviateURL, degradedChat)
	prod := newProducer(t, j)
	defer prod.tp.Shutdown(context.Background()) //nolint:errcheck // every span was exported as it ended

	day := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ev := func(chat, id, role, text string, minute int) stacktest.Msg {
		return stacktest.Event(map[string]any{"event_id": id, "chat_id": chat, "role": role, "text": text,
			"sent_at": day.Add(time.Duration(minute) * time.Minute).Format(time.RFC3339)})
	}
	p, logs, stderr := runWorker(t, e) // first: the producer's spans end as the events are sent
	const secret = "my card number is 4111 1111 1111 1111"
	chat, mutedChat := e.ChatID("traced"), e.ChatID("muted")
	traced, tracedSpan := prod.send(ev(chat, "t-3", "user", "Where is order S00042? "+secret, 3))
	degraded, degradedSpan := prod.send(ev(degradedChat, "d-1", "user", "Opening hours on Sunday?", 1))
	muted, mutedSpan := prod.send(ev(mutedChat, "m-2", "user", "Is anybody there?", 2))
	msgs := []stacktest.Msg{
		ev(chat, "t-1", "user", "I ordered a desk last week", 1),
		ev(chat, "t-2", "assistant", "Order S00042 ships tomorrow", 2),
		traced, degraded,
		stacktest.Event(map[string]any{"event_id": "m-1", "chat_id": mutedChat, "type": "mute"}),
		muted,
	}
	producers := map[string]trace.SpanContext{"t-3": tracedSpan, "d-1": degradedSpan, "m-2": mutedSpan}

	e.Send(t, msgs...)
	results := map[string]contracttest.Result{}
	for _, r := range e.Results(t, 4, 2*time.Minute) {
		results[r.EventID] = r
	}
	if code, err := p.Stop(time.Minute); err != nil || code != 0 {
		t.Fatalf("worker after SIGTERM: exit %d, %v\n%s", code, err, stderr)
	}
	if stderr.Len() != 0 {
		t.Errorf("the worker wrote to stderr: %s", stderr)
	}
	for _, l := range logs.Lines() {
		if l.Msg() == "traces not all exported" {
			t.Errorf("spans lost at the shutdown: %s", l.Raw)
		}
	}

	chatprepSpans := map[string]int{"t-3": 8, "d-1": 8, "m-2": 8} // the event's, 6 tasks', the publish's
	for id, prodSpan := range producers {
		r, ok := results[id]
		if !ok {
			t.Fatalf("no result for %s", id)
		}
		traceID, eventSpanID, _ := contracttest.TraceParent(r.Attributes["traceparent"])
		if traceID != prodSpan.TraceID().String() {
			t.Errorf("%s: result traceparent %q, not in the producer's trace %s", id, r.Attributes["traceparent"], prodSpan.TraceID())
		}
		tr := waitTrace(t, j, traceID, 1+chatprepSpans[id])
		t.Logf("%s:\n%s", id, waterfall(tr))
		if len(tr.Spans) != 1+chatprepSpans[id] {
			t.Errorf("%s: %d spans, want the producer's and %d of chatprep", id, len(tr.Spans), chatprepSpans[id])
		}
		// Whole phrases, not a fragment like "4111": the trace's hex ids and
		// microsecond timestamps hold any four digits now and then (CI saw
		// "11:11:48.411199").
		raw := fmt.Sprintf("%+v", tr)
		for _, text := range []string{"4111 1111", "4111111111111111", "card number", "order S00042?", "Opening hours", "anybody", "ordered a desk", "ships tomorrow"} {
			if strings.Contains(raw, text) {
				t.Errorf("%s: message text %q is in the trace: %s", id, text, raw)
			}
		}
		spans := map[string]devstack.SpanData{}
		for _, s := range tr.Spans {
			spans[s.Operation] = s
		}
		event := spans["process "+config.QueueName(e.InputURL)]
		switch {
		case spans["enqueue"].Service != "webhook" || spans["enqueue"].SpanID != prodSpan.SpanID().String():
			t.Errorf("%s: the producer's span is not in the trace: %+v", id, spans["enqueue"])
		case event.ParentID != prodSpan.SpanID().String() || event.Service != "chatprep":
			t.Errorf("%s: event span %+v, want chatprep's child of the producer's span", id, event)
		case event.SpanID != eventSpanID:
			t.Errorf("%s: the result's traceparent names span %s, the event span is %s", id, eventSpanID, event.SpanID)
		}
		want := map[string]any{"event.id": id, "chat.id": r.ChatID, "route": r.Route, "muted": r.Muted,
			"degraded": float64(len(r.Degraded)), "span.kind": "consumer", "messaging.system": "aws_sqs"}
		for k, v := range want {
			if event.Tags[k] != v {
				t.Errorf("%s: event span %s = %v (%T), want %v", id, k, event.Tags[k], event.Tags[k], v)
			}
		}
		if w, ok := event.Tags["queue_wait_ms"].(float64); !ok || w < 0 {
			t.Errorf("%s: queue_wait_ms %v", id, event.Tags["queue_wait_ms"])
		}
		children := []string{"message_history", "relevance_search", "references", "muted_status", "route", "store",
			"send " + config.QueueName(e.ResponseURL)}
		for _, name := range children {
			s, ok := spans[name]
			if !ok || s.ParentID != event.SpanID {
				t.Errorf("%s: span %q (%+v), want a child of the event span", id, name, s)
				continue
			}
			desc, failed := s.Error()
			switch {
			case id == "d-1" && name == "muted_status":
				if !failed || len(r.Degraded) != 1 || r.Degraded[0].Task != name || desc != r.Degraded[0].Error {
					t.Errorf("%s: muted_status span error %v %q, result degraded %+v", id, failed, desc, r.Degraded)
				}
			case failed:
				t.Errorf("%s: span %s failed: %s", id, name, desc)
			case id == "m-2" && s.Tags["cancelled"] == true && s.Duration > event.Duration:
				t.Errorf("%s: cancelled %s outlasts its event", id, name)
			}
		}
	}
	if !results["m-2"].Muted || len(results["d-1"].Degraded) != 1 {
		t.Errorf("m-2 muted %v, d-1 degraded %+v", results["m-2"].Muted, results["d-1"].Degraded)
	}
	// The line of each event names its trace.
	for _, l := range logs.Lines() {
		if l.Msg() != logtest.Preprocessed {
			continue
		}
		traceID, _, _ := contracttest.TraceParent(results[l.Str("event_id")].Attributes["traceparent"])
		if l.Str("trace_id") != traceID {
			t.Errorf("%s: log line trace_id %q, its result's trace %s", l.Str("event_id"), l.Str("trace_id"), traceID)
		}
	}
}

// TestJaegerStopsMidRun: Jaeger goes away while the worker runs; every
// event is still processed (a result each, stored, nothing dead-lettered),
// the SDK's complaints are JSON log lines, and once Jaeger is back on its
// ports the next events' traces reach it.
func TestJaegerStopsMidRun(t *testing.T) {
	t.Parallel()
	j := stacktest.Jaeger(t)
	e := stacktest.New(t, stacktest.With("OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPURL, "OTEL_BSP_SCHEDULE_DELAY", "100",
		"OTEL_EXPORTER_OTLP_TIMEOUT", "1000", "LOG_LEVEL", "info"))
	batch := func(name string, n int) ([]stacktest.Msg, []event.Event) {
		var msgs []stacktest.Msg
		var events []event.Event
		for i := range n {
			m := stacktest.Event(map[string]any{"event_id": fmt.Sprintf("%s-%d", name, i), "chat_id": e.ChatID(fmt.Sprintf("c%d", i%4)),
				"text": "Where is my delivery?", "sent_at": time.Date(2026, 11, 30, 9, 0, i, 0, time.UTC).Format(time.RFC3339)})
			d, err := event.Decode([]byte(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			msgs, events = append(msgs, m), append(events, d)
		}
		return msgs, events
	}
	p, logs, stderr := runWorker(t, e)

	before, _ := batch("before", 8)
	e.Send(t, before...)
	first := e.Results(t, len(before), time.Minute)
	id, _, _ := contracttest.TraceParent(first[0].Attributes["traceparent"])
	waitTrace(t, j, id, 8)

	j.Halt()
	during, events := batch("during", 40)
	start := time.Now()
	e.Send(t, during...)
	results := e.Results(t, len(during), time.Minute)
	t.Logf("%d events with Jaeger down in %v", len(during), time.Since(start))
	got := map[string]contracttest.Result{}
	for _, r := range results {
		got[r.EventID] = r
	}
	for _, ev := range events {
		if _, ok := got[ev.EventID]; !ok {
			t.Errorf("no result for %s", ev.EventID)
		}
	}
	w := storetest.Reader{URL: e.Config.WeaviateURL}
	stored := 0
	for c := range 4 {
		stored += w.Stored(t, e.ChatID(fmt.Sprintf("c%d", c)))
	}
	if stored != len(before)+len(during) {
		t.Errorf("%d messages stored, want %d", stored, len(before)+len(during))
	}

	if err := j.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	after, _ := batch("after", 4)
	e.Send(t, after...)
	last := e.Results(t, len(after), time.Minute)
	id, _, _ = contracttest.TraceParent(last[len(last)-1].Attributes["traceparent"])
	waitTrace(t, j, id, 8)

	if code, err := p.Stop(time.Minute); err != nil || code != 0 {
		t.Fatalf("worker after SIGTERM: exit %d, %v\n%s", code, err, stderr)
	}
	if n := e.QueueDepth(t, e.DLQURL) + e.QueueDepth(t, e.InputURL); n != 0 {
		t.Errorf("%d messages left in the input and dead-letter queues", n)
	}
	if stderr.Len() != 0 {
		t.Errorf("the worker wrote to stderr: %s", stderr)
	}
	complained := false
	for _, l := range logs.Lines() {
		complained = complained || strings.HasPrefix(l.Msg(), "OpenTelemetry SDK") && l.Str("component") == "otel"
	}
	if !complained {
		t.Error("no log line of the failed exports")
	}
}

// TestPropagation: with no endpoint and with export to a real Jaeger (the
// default sampler), a result's traceparent names a new span (a new span id)
// of its producer's trace, with the producer's flags: a sampled producer's
// trace stays sampled and an unsampled one's unsampled; an event without a
// traceparent starts a sampled trace. The log line names the same trace.
// With export, the sampled events' spans reach Jaeger and the unsampled
// event's do not.
func TestPropagation(t *testing.T) {
	t.Parallel()
	const (
		sampledTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		unsampledTrace = "0af7651916cd43dd8448eb211c80319c"
		producerSpan   = "00f067aa0ba902b7"
	)
	for _, export := range []bool{false, true} {
		name := "no endpoint"
		if export {
			name = "export to jaeger"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var j *devstack.Jaeger
			opts := []stacktest.Option{stacktest.With("LOG_LEVEL", "info")}
			if export {
				j = stacktest.Jaeger(t)
				opts = []stacktest.Option{stacktest.With("LOG_LEVEL", "info", "OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPURL,
					"OTEL_BSP_SCHEDULE_DELAY", "3600000")} // everything leaves with the shutdown's flush
			}
			e := stacktest.New(t, opts...)
			day := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
			ev := func(id, traceparent string, i int) stacktest.Msg {
				m := stacktest.Event(map[string]any{"event_id": id, "chat_id": e.ChatID(id), "text": "Where is order S00042?",
					"sent_at": day.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)})
				if traceparent != "" {
					m.Attributes = map[string]string{"traceparent": traceparent}
				}
				return m
			}
			in := map[string]string{ // event id: the producer's traceparent
				"sampled":   "00-" + sampledTrace + "-" + producerSpan + "-01",
				"unsampled": "00-" + unsampledTrace + "-" + producerSpan + "-00",
				"none":      "",
			}
			p, logs, stderr := runWorker(t, e)
			e.Send(t, ev("sampled", in["sampled"], 1), ev("unsampled", in["unsampled"], 2), ev("none", "", 3))
			results := map[string]contracttest.Result{}
			for _, r := range e.Results(t, 3, 2*time.Minute) {
				results[r.EventID] = r
			}
			if code, err := p.Stop(time.Minute); err != nil || code != 0 {
				t.Fatalf("worker after SIGTERM: exit %d, %v\n%s", code, err, stderr)
			}
			want := map[string]struct{ trace, flags string }{
				"sampled": {sampledTrace, "01"}, "unsampled": {unsampledTrace, "00"}, "none": {"", "01"},
			}
			traceOf := map[string]string{}
			for id, w := range want {
				tp := results[id].Attributes["traceparent"]
				traceID, spanID, ok := contracttest.TraceParent(tp)
				switch {
				case !ok:
					t.Errorf("%s: result traceparent %q", id, tp)
				case w.trace != "" && traceID != w.trace:
					t.Errorf("%s: result traceparent %q, not in the producer's trace %s", id, tp, w.trace)
				case spanID == producerSpan:
					t.Errorf("%s: result traceparent %q names the producer's span, not a new one", id, tp)
				case !strings.HasSuffix(tp, "-"+w.flags):
					t.Errorf("%s: result traceparent %q, want flags %s (the producer's %q)", id, tp, w.flags, in[id])
				}
				traceOf[id] = traceID
			}
			for _, l := range logs.Lines() {
				if l.Msg() == logtest.Preprocessed && l.Str("trace_id") != traceOf[l.Str("event_id")] {
					t.Errorf("%s: log line trace_id %q, its result's trace %s", l.Str("event_id"), l.Str("trace_id"), traceOf[l.Str("event_id")])
				}
			}
			if !export {
				return
			}
			for _, id := range []string{"sampled", "none"} {
				tr := waitTrace(t, j, traceOf[id], 8)
				_, eventSpan, _ := contracttest.TraceParent(results[id].Attributes["traceparent"])
				found := false
				for _, s := range tr.Spans {
					found = found || s.SpanID == eventSpan && strings.HasPrefix(s.Operation, "process ")
				}
				if !found {
					t.Errorf("%s: the result's span %s is not an event span in Jaeger:\n%s", id, eventSpan, waterfall(tr))
				}
			}
			// The unsampled trace left with the same flush as the sampled ones.
			if tr, err := j.Trace(t.Context(), unsampledTrace); !errors.Is(err, devstack.ErrNoTrace) {
				t.Errorf("the unsampled producer's trace reached Jaeger: %v %v", err, spansOf(tr))
			}
		})
	}
}
