package devstack_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
)

// TestWaterfall draws a trace whose event waited in a backlog far longer
// than it took: the time line starts at the first span and ◀ marks the
// wait; children sit under their parent in start order; a remote parent is
// named.
func TestWaterfall(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	tr := &devstack.TraceData{ID: "4bf92f3577b34da6a3ce929d0e0e4736", Spans: []devstack.SpanData{
		{SpanID: "b", ParentID: "a", Operation: "store", Service: "chatprep", Start: t0.Add(ms(2)), Duration: ms(6)},
		{SpanID: "a", ParentID: "remote", Operation: "process in.fifo", Service: "chatprep", Start: t0, Duration: ms(10),
			Tags: map[string]any{"queue_wait_ms": 500.0, "event.id": "e-1", "degraded": 1.0}},
		{SpanID: "c", ParentID: "a", Operation: "route", Service: "chatprep", Start: t0.Add(ms(1)), Duration: ms(0.01)},
		{SpanID: "d", ParentID: "a", Operation: "muted_status", Service: "chatprep", Start: t0.Add(ms(1)), Duration: ms(3),
			Tags: map[string]any{"otel.status_code": "ERROR", "otel.status_description": "timeout after 2s"}},
	}}
	var b strings.Builder
	tr.Waterfall(&b, 20)
	got := b.String()
	t.Logf("\n%s", got)
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	want := []string{
		"trace 4bf92f3577b34da6a3ce929d0e0e4736: 4 spans, 1 service, 10.0 ms",
		"  (process in.fifo continues span remote, which is not in this trace: its service did not export it)",
		"", // the scale
		"chatprep  process in.fifo  ◀███████████████████   10.0 ms  queue wait 500.0 ms  event.id=e-1  degraded=1",
		"chatprep    muted_status     ██████               3.00 ms  ERROR timeout after 2s",
		"chatprep    route            ▏                    0.01 ms  ",
		"chatprep    store              ████████████       6.00 ms  ",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, w := range want {
		if w != "" && strings.TrimRight(lines[i], " ") != strings.TrimRight(w, " ") {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], w)
		}
	}
}

// TestJaegerVersion: the version the stack names is the one tools/go.mod
// builds.
func TestJaegerVersion(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(binDir(t)), "tools", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "github.com/jaegertracing/jaeger "+devstack.JaegerVersion+" ") {
		t.Errorf("tools/go.mod does not require github.com/jaegertracing/jaeger %s", devstack.JaegerVersion)
	}
}
