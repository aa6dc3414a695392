package main_test

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/app/apptest"
	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/metrics/cwtest"
)

// runWorker starts `worker run` with e's environment; its stdout goes to
// the returned Logs. It returns once the worker consumes, and kills it when
// the test ends if it still runs.
func runWorker(t *testing.T, e *stacktest.Env) (*devstack.Process, *logtest.Logs, *bytes.Buffer) {
	t.Helper()
	return startRun(t, e.Environ(), "worker consuming")
}

// startRun starts `worker run` with env and returns once it logged a line
// with message until. Its stdout goes to the returned Logs, its stderr to
// the buffer; it is killed when the test ends if it still runs.
func startRun(t *testing.T, env []string, until string) (*devstack.Process, *logtest.Logs, *bytes.Buffer) {
	t.Helper()
	logs := logtest.NewLogs()
	var stderr bytes.Buffer
	cmd := exec.Command(workerBin, "run")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, &stderr
	p := startProcess(t, cmd)
	go func() { <-p.Done(); logs.Write(nil) }() // wakes the Wait below if it exits silently
	// A liveness bound, as the devstack quick start's: under make test the
	// worker starts while every package loads the 2 cores, and one CI run
	// saw the quick start's worker take over a minute to consume (alone:
	// seconds).
	logs.Wait(t, 5*time.Minute, until, func(ls []logtest.Line) bool {
		return logtest.Count(ls, until, "") == 1 || p.ExitCode() != -1
	})
	if p.ExitCode() != -1 {
		t.Fatalf("worker exited with %d: %s", p.ExitCode(), stderr.String())
	}
	return p, logs, &stderr
}

// TestRunMetricsExact runs the worker binary on the real CloudWatch path:
// timestamps on, request compression on (the defaults), CloudWatch at a
// decoding test server through the SDK's own AWS_ENDPOINT_URL_CLOUDWATCH
// while SQS stays on kumo. With a flush interval longer than the run,
// nothing is sent until SIGTERM; the shutdown flush then sends everything
// before the worker exits 0. Each aggregate the server decodes is checked
// against values computed from the results, the dead letters and the log
// lines alone. The log lines themselves are checked too: one per event at
// info with the contract's fields, a flush line, no message text.
func TestRunMetricsExact(t *testing.T) {
	t.Parallel()
	cw := cwtest.New(t)
	e := stacktest.New(t, stacktest.With(
		"AWS_ENDPOINT_URL_CLOUDWATCH", cw.URL,
		"METRICS_TIMESTAMPS", "true", "AWS_DISABLE_REQUEST_COMPRESSION", "false",
		"METRICS_FLUSH_INTERVAL", "1h", "LOG_LEVEL", "info",
	))
	ns := e.Config.MetricsNamespace

	// Enough events that one PutMetricData body passes the SDK's 10 KiB
	// compression threshold.
	const chats, perChat = 20, 8
	var msgs []stacktest.Msg
	var events []event.Event
	var texts []string
	add := func(ev map[string]any) {
		m := stacktest.Event(ev)
		msgs = append(msgs, m)
		d, err := event.Decode([]byte(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, d)
		if d.Text != "" {
			texts = append(texts, d.Text)
		}
	}
	day := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	msgAt := func(chat, id, role, text string, minute int) map[string]any {
		return map[string]any{"event_id": id, "chat_id": chat, "role": role, "text": text,
			"sent_at": day.Add(time.Duration(minute) * time.Minute).Format(time.RFC3339)}
	}
	for c := range chats {
		chat := e.ChatID(fmt.Sprintf("c%02d", c))
		if c == 0 {
			add(map[string]any{"event_id": "c00-mute", "chat_id": chat, "type": "mute"})
		}
		for i := range perChat {
			text := fmt.Sprintf("Opening hours on day %d, chat %d?", i, c)
			if c%2 == 1 {
				text = fmt.Sprintf("Status of order S%05d, please (%d)", 40000+c, i)
			}
			add(msgAt(chat, fmt.Sprintf("c%02d-u%d", c, i), "user", text, 2*i))
			if i%4 == 3 {
				add(msgAt(chat, fmt.Sprintf("c%02d-a%d", c, i), "assistant", fmt.Sprintf("Answer %d for chat %d.", i, c), 2*i+1))
			}
		}
	}
	poison := []stacktest.Msg{
		{Body: "{not json", Group: e.ChatID("poison"), Dedup: "p1"},
		stacktest.Event(map[string]any{"event_id": "p2", "chat_id": e.ChatID("poison"), "text": "no time"}),
		stacktest.Event(map[string]any{"event_id": "p3", "chat_id": e.ChatID("poison"), "role": "system", "text": "x", "sent_at": "2026-11-28T08:00:00Z"}),
	}
	want := contracttest.Expect(events, e.Config.HistoryLimit)

	p, logs, stderr := runWorker(t, e)
	from := time.Now()
	e.Send(t, append(msgs, poison...)...)
	results := e.Results(t, len(want), 2*time.Minute)
	dead := e.DeadLetters(t, len(poison), time.Minute)
	logs.Wait(t, time.Minute, "a line per event", func(ls []logtest.Line) bool {
		return logtest.Count(ls, logtest.Preprocessed, "")+logtest.Count(ls, logtest.Handled, "") >= len(events)
	})
	if n := cw.Requests(); n != 0 {
		t.Errorf("%d PutMetricData requests before shutdown with METRICS_FLUSH_INTERVAL=1h", n)
	}

	code, err := p.Stop(time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("worker after SIGTERM: exit %d, %v\n%s", code, err, stderr.String())
	}
	until := time.Now()
	lines := logs.Lines()

	got := map[string]contracttest.Result{}
	for _, r := range results {
		got[r.EventID] = r
		contracttest.CheckEnvelope(t, r, true, from)
		if len(r.Degraded) == 0 { // a loaded machine may time a retrieval out
			contracttest.CheckContext(t, r, want[r.EventID], e.Config.RelevanceLimit)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct results, want %d", len(got), len(want))
	}
	contracttest.CheckEventLines(t, lines, events, got)
	logtest.CheckNoText(t, lines, texts)
	logtest.CheckDurationKeys(t, lines)

	// What was sent: every call in the namespace, timestamps on whole
	// minutes of the run, and a body large enough to be compressed.
	calls := cw.Calls()
	if len(calls) == 0 {
		t.Fatal("no PutMetricData call after shutdown: pending metrics were not flushed")
	}
	compressed, data := false, 0
	for _, c := range calls {
		if c.Namespace != ns {
			t.Errorf("call in namespace %q, want %q", c.Namespace, ns)
		}
		compressed = compressed || c.Compressed && c.BodyBytes >= 10240
		data += len(c.Data)
		for _, d := range c.Data {
			if d.Timestamp == nil || d.Timestamp.Second() != 0 || d.Timestamp.Nanosecond() != 0 ||
				d.Timestamp.Before(from.Truncate(time.Minute)) || d.Timestamp.After(until) {
				t.Errorf("%s: timestamp %v, want a whole minute within the run (%v to %v)", d.MetricName, d.Timestamp, from, until)
			}
		}
	}
	if !compressed {
		t.Errorf("no call was gzip-compressed above 10 KiB: the real CloudWatch path was not taken (%d calls)", len(calls))
	}
	flushes := 0
	for _, l := range lines {
		if l.Msg() == "metrics flushed" {
			flushes++
			if l.Level() != "info" || l.Fields["data_sent"] != float64(data) || l.Fields["calls"] != float64(len(calls)) || l.Fields["dropped"] != 0.0 {
				t.Errorf("flush line %s; the server got %d data in %d calls", l.Raw, data, len(calls))
			}
		}
	}
	if flushes != 1 {
		t.Errorf("%d flush lines, want the one at shutdown", flushes)
	}

	// The independent side: counts and extremes from the log lines.
	type stat struct {
		n             float64
		min, max, sum float64
	}
	add1 := func(s *stat, v float64) {
		if s.n == 0 || v < s.min {
			s.min = v
		}
		if s.n == 0 || v > s.max {
			s.max = v
		}
		s.n++
		s.sum += v
	}
	type key struct{ name, route string }
	expect := map[key]*stat{}
	at := func(name, route string) *stat {
		k := key{name, route}
		if expect[k] == nil {
			expect[k] = &stat{}
		}
		return expect[k]
	}
	// Every publish is a log line (CheckEventLines matched them to the
	// results); a run on a loaded machine may retry or degrade some
	// messages, and the lines say so too.
	processed, degraded, muted := map[string]float64{}, map[string]float64{}, 0.0
	receives := float64(len(dead)) // a poison message is received once
	for _, l := range lines {
		switch l.Msg() {
		case logtest.Preprocessed:
			route := l.Str("route")
			tm, _ := l.Fields["timings_ms"].(map[string]any)
			processed[route]++
			if l.Fields["degraded"] != 0.0 {
				degraded[route]++
			}
			add1(at(metrics.HandlerTotalDuration, route), l.Fields["duration_ms"].(float64))
			add1(at(metrics.PreprocessingDuration, route), tm["preprocessing"].(float64))
			if l.Fields["muted"] == true {
				muted++
			} else {
				add1(at(metrics.MessageHistoryDuration, route), tm["message_history"].(float64))
				add1(at(metrics.RelevanceSearchDuration, route), tm["relevance_search"].(float64))
			}
			fallthrough
		case logtest.Handled:
			// SQS's receive count of the delivery that finished counts the
			// receives of the message before it (failed or released).
			receives += l.Fields["receive_count"].(float64)
		}
	}
	if processed["odoo_erp"] == 0 || processed["general"] == 0 || muted == 0 {
		t.Fatalf("the events did not cover both routes and a muted chat: %v, muted %v", processed, muted)
	}
	failed := float64(logtest.Count(lines, "handler failed: message left for redelivery", ""))
	var stopped logtest.Line
	for _, l := range lines {
		if l.Msg() == "worker stopped" {
			stopped = l
		}
	}
	if stopped.Fields["received"] != receives || stopped.Fields["rejected"] != float64(len(poison)) || stopped.Fields["failed"] != failed {
		t.Errorf("worker stopped line %s; want %v received, %d rejected, %v failed", stopped.Raw, receives, len(poison), failed)
	}

	// Durations: the server's aggregates against the results' and log
	// lines' timings, which are the same durations cut to the microsecond.
	for k, s := range expect {
		a := cw.Total(ns, k.name, cwtest.Dims(metrics.RouteDimension, k.route))
		if a.SampleCount != s.n || !withinMicro(a.Minimum, s.min) || !withinMicro(a.Maximum, s.max) ||
			math.Abs(a.Sum-s.sum) > 0.001*s.n+1e-6 || !slices.Equal(a.Units, []string{"Milliseconds"}) {
			t.Errorf("%s[%s]: got count %v min %v max %v sum %v %v; want count %v min %v max %v sum %v (to the µs)",
				k.name, k.route, a.SampleCount, a.Minimum, a.Maximum, a.Sum, a.Units, s.n, s.min, s.max, s.sum)
		}
	}
	if a := cw.Total(ns, metrics.QueueWaitDuration, ""); a.SampleCount != receives || a.Minimum < 0 {
		t.Errorf("queue_wait_duration: count %v min %v; want count %v (every receive)", a.SampleCount, a.Minimum, receives)
	}
	for _, c := range []struct {
		name, route string
		want        float64
	}{
		{metrics.MessagesProcessed, "odoo_erp", processed["odoo_erp"]},
		{metrics.MessagesProcessed, "general", processed["general"]},
		{metrics.MessagesMuted, "", muted},
		{metrics.MessagesRejected, "", float64(len(dead))},
		{metrics.MessagesDegraded, "odoo_erp", degraded["odoo_erp"]},
		{metrics.MessagesDegraded, "general", degraded["general"]},
		{metrics.MessagesFailed, "", failed},
	} {
		dims := ""
		if c.route != "" {
			dims = cwtest.Dims(metrics.RouteDimension, c.route)
		}
		if a := cw.Total(ns, c.name, dims); a.Sum != c.want || a.SampleCount > 0 && !slices.Equal(a.Units, []string{"Count"}) {
			t.Errorf("%s[%s]: sum %v %v, want %v Count", c.name, c.route, a.Sum, a.Units, c.want)
		}
	}
	// Nothing beyond the contract's metrics: no dropped data, no other name
	// or dimension.
	known := map[string]bool{}
	for _, m := range metrics.Metrics() {
		known[m.Name] = true
	}
	for k := range cw.Aggregates() {
		route := strings.TrimPrefix(k.Dimensions, metrics.RouteDimension+"=")
		if !known[k.MetricName] || k.Dimensions != "" && route != "odoo_erp" && route != "general" {
			t.Errorf("unexpected stream %s [%s]", k.MetricName, k.Dimensions)
		}
	}
}

// withinMicro tells whether a metric value in milliseconds (from
// nanoseconds) is the value v that was cut to the microsecond.
func withinMicro(metric, v float64) bool {
	return metric >= v-1e-9 && metric < v+0.001+1e-9
}

// TestSecondSignalExitsAtOnce: SIGTERM starts the drain (logged), a second
// signal during it ends the worker at once with status 1 and one JSON line
// on stderr. The drain is held open by a message whose Weaviate calls hang
// (Weaviate behind a proxy that delays everything by a minute).
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	slow, err := devstack.StartTCPProxy(strings.TrimPrefix(e.Config.WeaviateURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	env := append(e.Environ(), "WEAVIATE_URL="+slow.URL(), "WEAVIATE_GRPC_ADDR=off", "TASK_TIMEOUT=5m", "SHUTDOWN_TIMEOUT=5m", "LOG_LEVEL=info")
	p, logs, stderr := startRun(t, env, "worker consuming")
	var addr string
	for _, l := range logs.Lines() {
		if l.Msg() == "worker consuming" {
			addr = l.Str("health_addr")
		}
	}
	slow.SetDelay(time.Minute)
	e.Send(t, stacktest.Event(map[string]any{"event_id": "held", "chat_id": e.ChatID("c"), "text": "hello", "sent_at": "2026-11-28T08:00:00Z"}))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline, received := time.Now().Add(time.Minute), 0.0; received < 1; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not receive the message within a minute")
		}
		v, err := apptest.DebugVars(addr)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := v["consumer"].(map[string]any)
		received, _ = c["Received"].(float64)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.Wait(t, time.Minute, "the drain's first line", func(ls []logtest.Line) bool {
		return slices.ContainsFunc(ls, func(l logtest.Line) bool { return strings.HasPrefix(l.Msg(), "stopping: ") })
	})
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if code := p.ExitCode(); code != 1 {
		t.Fatalf("exit %d after the second signal, want 1; stderr %q", code, stderr)
	}
	lines := strictLines(t, "stderr", stderr.String())
	if len(lines) != 1 || lines[0].Level() != "warn" || lines[0].Str("signal") != "interrupt" || !strings.Contains(lines[0].Msg(), "second signal") {
		t.Errorf("stderr %q: want one warn line naming the second signal", stderr)
	}
}

// TestFirstSignalSaysWhatItWaitsFor: on an idle queue a long poll is in
// flight at any time, and a stop lets it run to its end (SQS would deliver
// into a cancelled one), so Ctrl-C seemed to hang. The first SIGINT now
// logs one line saying the worker waits for the poll, how long at most, and
// that a second signal stops at once. Without a second signal the worker
// exits 0 once the poll returned, within what the line said and the stop's
// own fixed stages; with one it exits at once with status 1.
func TestFirstSignalSaysWhatItWaitsFor(t *testing.T) {
	t.Parallel()
	for _, second := range []bool{false, true} {
		t.Run(map[bool]string{false: "one signal", true: "two signals"}[second], func(t *testing.T) {
			t.Parallel()
			e := stacktest.New(t)
			p, logs, stderr := startRun(t, append(e.Environ(), "LOG_LEVEL=info"), "worker consuming")
			// Both receivers (RECEIVERS=2) in their second poll: the first,
			// short ones return together, and a signal between two polls
			// would find none in flight.
			var addr string
			for _, l := range logs.Lines() {
				if l.Msg() == "worker consuming" {
					addr = l.Str("health_addr")
				}
			}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for deadline, polls := time.Now().Add(time.Minute), 0.0; polls < 4; <-tick.C {
				if time.Now().After(deadline) {
					t.Fatalf("the worker made %v receive calls in a minute, want 4", polls)
				}
				v, err := apptest.DebugVars(addr)
				if err != nil {
					t.Fatal(err)
				}
				c, _ := v["consumer"].(map[string]any)
				calls, _ := c["Calls"].(map[string]any)
				polls, _ = calls["ReceiveMessage"].(float64)
			}
			if err := p.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			stopAt := time.Now()
			var stop logtest.Line
			logs.Wait(t, time.Minute, "the stop's line", func(ls []logtest.Line) bool {
				i := slices.IndexFunc(ls, func(l logtest.Line) bool { return strings.HasPrefix(l.Msg(), "stopping: ") })
				if i >= 0 {
					stop = ls[i]
				}
				return i >= 0
			})
			polls, _ := stop.Fields["polls_in_flight"].(float64)
			waitMS, _ := stop.Fields["poll_wait_ms"].(float64)
			if polls < 1 || waitMS <= 0 || waitMS > 20000 || !strings.Contains(stop.Msg(), "waiting up to ") ||
				!strings.HasSuffix(stop.Msg(), "; a second SIGINT or SIGTERM (Ctrl-C again) stops at once") {
				t.Fatalf("the stop's line: %s", stop.Raw)
			}
			if second {
				if err := p.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-p.Done():
			case <-time.After(time.Minute):
				t.Fatal("the worker still runs a minute after SIGINT")
			}
			took := time.Since(stopAt)
			if second {
				lines := strictLines(t, "stderr", stderr.String())
				if p.ExitCode() != 1 || len(lines) != 1 || !strings.Contains(lines[0].Msg(), "second signal") ||
					logtest.Count(logs.Lines(), "worker stopped", "") != 0 {
					t.Errorf("after the second signal: exit %d, stderr %q; want 1, one line, and no drain", p.ExitCode(), stderr)
				}
				return
			}
			// The poll's wait, then the stop's fixed stages at most.
			bound := time.Duration(waitMS*float64(time.Millisecond)) + app.AckTimeout + app.CloseTimeout + app.FlushTimeout
			if p.ExitCode() != 0 || logtest.Count(logs.Lines(), "drained", "") != 1 || took > bound {
				t.Errorf("one signal: exit %d after %v (the line said the poll ends within %.0f ms; bound %v); stderr %q",
					p.ExitCode(), took, waitMS, bound, stderr)
			}
			t.Logf("the worker exited %v after SIGINT; the stop's line: %s", took.Round(time.Millisecond), stop.Raw)
		})
	}
}
