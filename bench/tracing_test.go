package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
)

// Row 6: what tracing costs the worker. The worker's own overhead setup
// (row 4: benchworker with the in-memory store, so that the worker's CPU is
// all there is to see and tracing's share of it is at its largest), with
// tracing off (the default: no endpoint; no span is recorded, each only
// gets its ids, for propagation) and with export on (every event sampled,
// OTLP/HTTP to a real Jaeger on loopback). The two workers run side by side, each on its
// own queues and events, so that whatever else loads the machine loads
// both alike; CPU is each process's own.
const (
	tracingRounds   = 2
	tracingEvents   = 8000 // per worker and round (-quick: a tenth)
	goalTracingCost = 1.15
)

// tracingRun is one worker's run in row 6.
type tracingRun struct {
	export bool
	runResult
	traces, spans int // what Jaeger holds of the run, read after it
}

// tracingResult is row 6.
type tracingResult struct {
	perChat int
	runs    []tracingRun // per round: off, then export on
}

// tracingRow runs row 6 on its own Jaeger, each worker's events spread over
// chats.
func tracingRow(ctx context.Context, e *env, chats int) (*tracingResult, error) {
	perChat := tracingEvents / chats
	if *flagQuick {
		perChat = max(1, perChat/10)
	}
	j, err := e.startJaeger(ctx)
	if err != nil {
		return nil, err
	}
	defer j.Stop() //nolint:errcheck // a temporary directory
	p := &phase{e: e, stack: &devstack.Stack{AWS: e.aws, Weaviate: &devstack.Weaviate{}}}
	res := &tracingResult{perChat: perChat}
	start := workload.EventBase
	for round := range tracingRounds {
		pair := make([]tracingRun, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, export := range []bool{false, true} {
			name := fmt.Sprintf("row6-%d-%d", round, i)
			extra := map[string]string{"WEAVIATE_URL": "http://127.0.0.1:9", "WEAVIATE_GRPC_ADDR": "off"}
			if export {
				extra["OTEL_EXPORTER_OTLP_ENDPOINT"] = j.OTLPURL
				extra["OTEL_TRACES_SAMPLER"] = "always_on"
				// Room for the bursts of a backlog, so that every span is
				// exported and paid for, none dropped.
				extra["OTEL_BSP_MAX_QUEUE_SIZE"] = "262144"
			}
			args := []string{"-store", "memory"}
			if *flagProfile != "" {
				args = profileArgs(name, "memory")
			}
			wr := workerRun{name: name, bin: e.benchWorker, args: args, extra: extra,
				events: workload.Events(name, chats, perChat, start)}
			wg.Go(func() {
				pair[i].export = export
				pair[i].runResult, errs[i] = p.run(ctx, wr)
			})
		}
		wg.Wait()
		start = start.Add(time.Duration(perChat) * time.Second)
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("row6-%d-1", round)
		if pair[1].traces, pair[1].spans, err = jaegerHolds(ctx, j.QueryURL, "process bench-"+name+"-in.fifo"); err != nil {
			return nil, err
		}
		res.runs = append(res.runs, pair...)
	}
	return res, nil
}

// startJaeger starts a Jaeger of the row's own (building it first if
// bin/ has none); the caller stops it.
func (e *env) startJaeger(ctx context.Context) (*devstack.Jaeger, error) {
	bin, err := devstack.EnsureJaegerBinary(ctx, filepath.Join(e.root, "bin"), os.Stderr)
	if err != nil {
		return nil, err
	}
	return devstack.StartJaeger(ctx, devstack.JaegerOptions{Binary: bin})
}

// jaegerHolds counts the traces whose event span is named operation, and
// their spans, in Jaeger (the worker has exited: it exported all it would).
func jaegerHolds(ctx context.Context, queryURL, operation string) (traces, spans int, err error) {
	q := url.Values{"service": {"chatprep"}, "operation": {operation}, "limit": {"100000"}, "lookback": {"2h"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, queryURL+"/api/traces?"+q.Encode(), nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("count spans in jaeger: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct{ Spans []struct{} }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, 0, fmt.Errorf("count spans in jaeger: %w", err)
	}
	for _, t := range out.Data {
		spans += len(t.Spans)
	}
	return len(out.Data), spans, nil
}

// cpuPerEvent is the worker's CPU per event over the runs with export on
// or off.
func (t *tracingResult) cpuPerEvent(export bool) time.Duration {
	var cpu time.Duration
	n := 0
	for _, r := range t.runs {
		if r.export == export {
			cpu += r.workerCPU
			n += r.n
		}
	}
	return cpu / time.Duration(max(n, 1))
}

func (t *tracingResult) ratio() float64 {
	return float64(t.cpuPerEvent(true)) / float64(max(t.cpuPerEvent(false), 1))
}

func (t *tracingResult) markdown(p func(format string, a ...any)) {
	p("## 6. Tracing's cost\n\n")
	p("Row 4's setup (benchworker, the in-memory store: the worker's own CPU is all there is, so tracing's share is at its largest), "+
		"two fresh workers side by side in each round, each on its own queues with %s events (%d per chat), so that whatever else loads the machine loads both: "+
		"tracing off (the default, no OTLP endpoint: no span is recorded, each only gets its ids for propagation) "+
		"and export on (OTEL_TRACES_SAMPLER=always_on, OTLP/HTTP in batches to a Jaeger on loopback; 8 spans per event). "+
		"Events/s are of two workers sharing the cores.\n\n",
		groupThousands(fmt.Sprint(t.runs[0].n)), t.perChat)
	p("| round | tracing | events/s | worker CPU / event | peak RSS | in Jaeger afterwards |\n| ---: | --- | ---: | ---: | ---: | ---: |\n")
	for i, r := range t.runs {
		mode, spans := "off", "—"
		if r.export {
			mode = "export on"
			spans = fmt.Sprintf("%s traces, %s spans", groupThousands(fmt.Sprint(r.traces)), groupThousands(fmt.Sprint(r.spans)))
		}
		p("| %d | %s | %s | %s | %s | %s |\n", i/2+1, mode, num(r.eventsPerSec()), dur(r.perEvent(r.workerCPU)), mb(r.maxRSS), spans)
	}
	p("\n**Export on: worker CPU per event %s against %s off, ×%.2f** (goal ≤ ×%.2f: %s).\n\n",
		dur(t.cpuPerEvent(true)), dur(t.cpuPerEvent(false)), t.ratio(), goalTracingCost, check(t.ratio() <= goalTracingCost))
}
