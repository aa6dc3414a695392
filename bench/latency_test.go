package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/setup"
	"github.com/chatprep/chatprep/internal/store"
)

// What a chat user waits for (issue 18): from the moment the producer sends
// an event to the moment its result can be received from the response
// queue, with events sent one at a time at a fixed rate (open loop: a slow
// answer never delays the next send), on a Weaviate with its own memtable
// settings, as Weaviate Cloud and most self-hosted clusters run.
//
// The floor is an echo consumer (bench/cmd/echoworker): it receives, sends
// the body on to the response queue and deletes, with no batching and no
// Weaviate: what one queue hop costs here. Each load is measured for the
// echo and for the worker, one after the other on the same stack.

// latencyChats is the number of chats the open-loop events go to.
const latencyChats = 50

// latencyWarmup is how long after the first send events are not counted:
// connections and the first long polls.
const latencyWarmup = 2 * time.Second

// latencyWait is how long a run waits for the last results after its last
// send; a result that has not come by then counts as that late, and the
// report says how many did not.
const latencyWait = 2 * time.Minute

// Targets of issue 18.
const (
	goalIdleMargin   = 2 * time.Millisecond // at 20 events/s: e2e p50 ≤ echo p50 + total p50 + this
	goalLoadOverIdle = 10                   // at 60% of the throughput: e2e p95 ≤ this × the 20 events/s p95
	goalLoadP99      = 250 * time.Millisecond
	latencyIdleRate  = 20   // events/s
	latencyLoadShare = 0.60 // of the measured throughput
)

// latencyRun is one open-loop run: a consumer fed events at rate.
type latencyRun struct {
	name   string
	echo   bool              // the echo consumer instead of the worker
	rate   float64           // events/s
	events []workload.Event  // sent in this order, one every 1/rate
	extra  map[string]string // variables on top of the phase's
	// profile runs the worker as benchworker with CPU and allocation
	// profiles (-profile DIR).
	profile bool
}

// latencyResult is what an open-loop run measured, over the events sent
// after latencyWarmup.
type latencyResult struct {
	name     string
	echo     bool
	rate     float64         // asked for
	achieved float64         // events/s the sender kept up
	lag      time.Duration   // the sender's worst lag behind its schedule
	n        int             // events measured
	late     int             // events whose result had not come latencyWait after the last send
	sent     int             // events sent (the SQS calls are of all of them)
	e2e      []time.Duration // sent → received from the response queue
	total    []time.Duration // the result's timings_ms.total (received by the worker → result ready); 0 for the echo
	sqs      map[string]int64
	weaviate time.Duration // Weaviate's CPU during the run
	worker   time.Duration // the consumer's CPU, start to exit
	busy     time.Duration
	all      time.Duration
	store    *workerVars // the worker's counters (nil for the echo)
}

func (r *latencyResult) p(q float64) time.Duration      { return percentile(r.e2e, q) }
func (r *latencyResult) totalP(q float64) time.Duration { return percentile(r.total, q) }

// sqsPerEvent is the consumer's SQS calls per event, every API.
func (r *latencyResult) sqsPerEvent() float64 {
	var n int64
	for _, v := range r.sqs {
		n += v
	}
	return float64(n) / float64(max(1, r.sent))
}

// openLoop runs lr on p's stack: queues of its own, the consumer started
// and ready, then lr.events sent one SendMessage each at lr.rate while four
// receivers take the results off the response queue as they come.
func (p *phase) openLoop(ctx context.Context, lr latencyRun) (latencyResult, error) {
	res := latencyResult{name: lr.name, echo: lr.echo, rate: lr.rate}
	vars := p.vars(lr.name, lr.extra)
	api, cfg, err := p.e.sqsClient(ctx, vars)
	if err != nil {
		return res, err
	}
	steps, err := setup.Queues(ctx, api, cfg)
	if err != nil {
		return res, err
	}
	inURL, outURL := steps[1].URL, steps[2].URL
	bin, args := p.e.worker, []string{"run"}
	if lr.profile {
		bin, args = p.e.benchWorker, profileArgs(lr.name, "weaviate")
	}
	if lr.echo {
		bin, args = p.e.echoWorker, []string{"-in", inURL, "-out", outURL}
	}
	weaviatePid := 0
	if p.stack.Weaviate != nil {
		weaviatePid = p.stack.Weaviate.Pid()
	}
	proxyBefore, harnessBefore := p.e.aws.Calls(), p.e.harness.snapshot()
	c, err := startChild(ctx, lr.name, bin, args, vars)
	if err != nil {
		return res, err
	}
	defer func() {
		if c.proc.ExitCode() == -1 {
			c.proc.Kill()
		}
	}()

	recvCtx, stopReceiving := context.WithCancel(ctx)
	defer stopReceiving()
	got := newArrivals(len(lr.events))
	var receivers sync.WaitGroup
	recvErr := make(chan error, 4)
	for range 4 {
		receivers.Go(func() {
			if err := receiveResults(recvCtx, api, outURL, got); err != nil && recvCtx.Err() == nil {
				recvErr <- err
			}
		})
	}

	cpu0 := sampleCPU(weaviatePid)
	sent, lag, err := sendOpenLoop(ctx, api, inURL, lr.events, lr.rate)
	res.lag = lag
	if err != nil {
		return res, err
	}
	// Every result, or at most latencyWait after the last send.
	waited := time.Now().Add(latencyWait)
	select {
	case <-got.all:
	case err := <-recvErr:
		return res, err
	case <-time.After(latencyWait):
	}
	cpu1 := sampleCPU(weaviatePid)
	stopReceiving()
	receivers.Wait()
	res.weaviate, res.busy, res.all = cpu1.pid-cpu0.pid, cpu1.busy-cpu0.busy, cpu1.total-cpu0.total
	if !lr.echo {
		v, err := c.vars(ctx)
		if err != nil {
			return res, err
		}
		res.store = &v
	}
	res.worker, _, err = c.stop()
	if err != nil {
		return res, err
	}
	res.sqs = diff(diff(p.e.aws.Calls(), proxyBefore), diff(p.e.harness.snapshot(), harnessBefore))
	delete(res.sqs, "CloudWatch.PutMetricData")
	res.sent = len(lr.events)

	first, last := sent[lr.events[0].EventID], time.Time{}
	for _, ev := range lr.events {
		at := sent[ev.EventID]
		if at.After(last) {
			last = at
		}
		if at.IsZero() {
			return res, fmt.Errorf("%w: %s: %s was not sent", errIncomplete, lr.name, ev.EventID)
		}
		a, ok := got.get(ev.EventID)
		if !ok { // counted at the longest wait, and reported
			res.late++
			a = arrival{at: waited}
		}
		if at.Sub(first) < latencyWarmup {
			continue
		}
		res.e2e = append(res.e2e, a.at.Sub(at))
		res.total = append(res.total, time.Duration(a.totalMS*float64(time.Millisecond)))
	}
	res.n = len(res.e2e)
	res.achieved = float64(len(lr.events)-1) / last.Sub(first).Seconds()
	return res, nil
}

// sendOpenLoop sends events one SendMessage each, the i-th at start +
// i/rate, each on its own goroutine so that a slow call never delays the
// next. It returns when each was sent (taken just before its call) and the
// sender's worst lag behind its schedule.
func sendOpenLoop(ctx context.Context, api *sqs.Client, url string, events []workload.Event, rate float64) (map[string]time.Time, time.Duration, error) {
	var (
		mu   sync.Mutex
		sent = make(map[string]time.Time, len(events))
		errs = make(chan error, len(events))
		wg   sync.WaitGroup
		lag  time.Duration
	)
	every := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(50 * time.Millisecond)
	fifo := strings.HasSuffix(url, ".fifo")
	for i, ev := range events {
		due := start.Add(time.Duration(i) * every)
		time.Sleep(time.Until(due))
		lag = max(lag, time.Since(due))
		wg.Go(func() {
			in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(ev.Body)}
			if fifo {
				in.MessageGroupId, in.MessageDeduplicationId = aws.String(ev.ChatID), aws.String(ev.EventID)
			}
			at := time.Now()
			if _, err := api.SendMessage(ctx, in); err != nil {
				errs <- fmt.Errorf("send %s: %w", ev.EventID, err)
				return
			}
			mu.Lock()
			sent[ev.EventID] = at
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	return sent, lag, <-errs
}

// arrivals are the results received, by event id, the first of each.
type arrivals struct {
	mu   sync.Mutex
	want int
	got  map[string]arrival
	all  chan struct{} // closed once want results arrived
}

func newArrivals(want int) *arrivals {
	return &arrivals{want: want, got: make(map[string]arrival, want), all: make(chan struct{})}
}

func (a *arrivals) add(id string, r arrival) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.got[id]; dup {
		return
	}
	a.got[id] = r
	if len(a.got) == a.want {
		close(a.all)
	}
}

func (a *arrivals) get(id string) (arrival, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.got[id]
	return r, ok
}

// receiveResults takes results off the response queue until ctx ends, each
// timed as its receive returns, and deletes them.
func receiveResults(ctx context.Context, api *sqs.Client, url string, got *arrivals) error {
	for ctx.Err() == nil {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		at := time.Now()
		if err != nil {
			return fmt.Errorf("receive results: %w", err)
		}
		if len(out.Messages) == 0 {
			continue
		}
		del := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url)}
		for i, m := range out.Messages {
			var r struct {
				EventID   string `json:"event_id"`
				TimingsMS struct {
					Total float64 `json:"total"`
				} `json:"timings_ms"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
				return fmt.Errorf("result is not JSON: %w", err)
			}
			got.add(r.EventID, arrival{at: at, totalMS: r.TimingsMS.Total})
			del.Entries = append(del.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := api.DeleteMessageBatch(context.WithoutCancel(ctx), del); err != nil {
			return fmt.Errorf("delete results: %w", err)
		}
	}
	return nil
}

// latencyRowResult is the latency row.
type latencyRowResult struct {
	throughput   runResult // the worker on a burst, on the same Weaviate: what 60% is of
	idle, loaded [2]latencyResult
	delayed      latencyResult // the worker at the idle rate, every Weaviate call 20 ms each way
	before       runResult     // the burst on a messages collection without tenants (before issue 18)
	loadedBefore latencyResult // the worker at loadRate on that collection
	delay        time.Duration
	loadRate     float64
	idleSpan     time.Duration
	loadSpan     time.Duration
}

// latencyRow measures the latency row on a fresh Weaviate with its own
// memtable settings, seeded with latencyChats chats.
func latencyRow(ctx context.Context, b *testing.B, e *env, sz sizes) (*latencyRowResult, error) {
	opts := devstack.WeaviateOptions{Untuned: true}
	var pprofURL string
	if *flagProfile != "" {
		// Weaviate serves Go's pprof on GO_PROFILING_PORT (the devstack
		// turns it off): its CPU profile of the loaded run.
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := strings.Cut(addr, ":")
		opts.Env = []string{"GO_PROFILING_DISABLE=false", "GO_PROFILING_PORT=" + port}
		pprofURL = "http://" + addr + "/debug/pprof/profile"
	}
	p := e.startPhaseWith(b, phaseOptions{weaviate: opts}, func(ctx context.Context, _ *devstack.Weaviate, st *store.Store) error {
		return seed(ctx, st, latencyChats)
	})
	defer p.stop()
	r := &latencyRowResult{delay: 20 * time.Millisecond, idleSpan: sz.latencyIdle, loadSpan: sz.latencyLoad}
	start := workload.EventBase.Add(3 * time.Hour)
	events := func(name string, n int) []workload.Event {
		perChat := (n + latencyChats - 1) / latencyChats
		evs := workload.Events(name, latencyChats, perChat, start)[:n]
		start = start.Add(time.Duration(perChat+1) * time.Second)
		return evs
	}

	var err error
	r.throughput, err = p.run(ctx, workerRun{name: "lat-burst", bin: e.worker, args: []string{"run"}, events: events("lat-burst", sz.latencyBurst)})
	if err != nil {
		return r, err
	}
	r.loadRate = latencyLoadShare * r.throughput.eventsPerSec()
	settle(ctx, p.stack.Weaviate.Pid())

	for i, rate := range []float64{latencyIdleRate, r.loadRate} {
		span, label := r.idleSpan, "idle"
		if i == 1 {
			span, label = r.loadSpan, "load"
		}
		n := int(rate * span.Seconds())
		for j, echo := range []bool{true, false} {
			name := fmt.Sprintf("lat-%s-%s", label, map[bool]string{true: "echo", false: "worker"}[echo])
			run := latencyRun{name: name, echo: echo, rate: rate, events: events(name, n)}
			var profiled func() error
			if *flagProfile != "" && i == 1 && !echo {
				// The loaded worker's run: the worker's CPU profile and
				// Weaviate's, over the middle of the run.
				run.profile = true
				profiled = profileURL(ctx, pprofURL, span/2, filepath.Join(*flagProfile, "row9-weaviate.cpu.pprof"), span/4)
			}
			lr, err := p.openLoop(ctx, run)
			if err == nil && profiled != nil {
				err = profiled()
			}
			if err != nil {
				return r, err
			}
			if i == 0 {
				r.idle[j] = lr
			} else {
				r.loaded[j] = lr
			}
		}
	}

	// The delayed row: the worker reaches Weaviate through the devstack's
	// delaying proxy, as row 2's chatprep does.
	rest, grpc, stop, err := weaviateProxies(p.stack.Weaviate)
	if err != nil {
		return r, err
	}
	defer stop()
	rest.SetDelay(r.delay)
	grpc.SetDelay(r.delay)
	n := int(latencyIdleRate * r.idleSpan.Seconds())
	r.delayed, err = p.openLoop(ctx, latencyRun{name: "lat-delayed-worker", rate: latencyIdleRate, events: events("lat-delayed", n),
		extra: map[string]string{"WEAVIATE_URL": rest.URL(), "WEAVIATE_GRPC_ADDR": grpc.Addr()}})
	if err != nil {
		return r, err
	}
	p.stop()

	// Before issue 18: the same worker on a messages collection without
	// tenants (as made before, and still served), on a fresh Weaviate
	// seeded alike: its throughput, and the loaded run at the same rate.
	old := e.startPhaseWith(b, phaseOptions{weaviate: devstack.WeaviateOptions{Untuned: true}, tenants: -1},
		func(ctx context.Context, _ *devstack.Weaviate, st *store.Store) error {
			return seed(ctx, st, latencyChats)
		})
	defer old.stop()
	if r.before, err = old.run(ctx, workerRun{name: "lat-burst-before", bin: e.worker, args: []string{"run"}, events: events("lat-burst-before", sz.latencyBurst)}); err != nil {
		return r, err
	}
	settle(ctx, old.stack.Weaviate.Pid())
	n = int(r.loadRate * r.loadSpan.Seconds())
	r.loadedBefore, err = old.openLoop(ctx, latencyRun{name: "lat-load-before", rate: r.loadRate, events: events("lat-load-before", n)})
	return r, err
}

// markdown writes the latency row.
func (r *latencyRowResult) markdown(p func(string, ...any)) {
	p("## 9. What a user waits for: end to end, open loop, on Weaviate's own settings\n\n")
	p("From the moment the producer sends an event (one SendMessage) to the moment its result is received from the response queue "+
		"(four receivers long-polling it), with events sent one at a time at a fixed rate to %d chats (open loop: a slow answer never "+
		"delays the next send; the first %s of each run are not counted). Weaviate %s runs with **its own memtable settings** "+
		"(`make up WEAVIATE_DEFAULTS=1`), as Weaviate Cloud and most self-hosted clusters do, on a fresh server seeded with %d chats × %d messages "+
		"(the messages collection with the %d tenants `worker setup` makes). "+
		"The echo consumer (bench/cmd/echoworker) receives, sends the body on and deletes, with no batching and no Weaviate: the floor of a queue hop "+
		"on this stack. Each load runs the echo, then the worker, %s each at 20 events/s and %s each at 60%% of the worker's throughput.\n\n",
		latencyChats, dur(latencyWarmup), devstack.WeaviateVersion, latencyChats, workload.SeedMessages, store.DefaultTenants, dur(r.idleSpan), dur(r.loadSpan))
	t := r.throughput
	p("The worker's throughput on this Weaviate: **%s events/s** (%s events over %d chats enqueued at once; Weaviate %s of CPU per event, "+
		"%.3f SQS calls per event); 60%% of it: %s events/s. Before issue 18 (the same worker on a messages collection without tenants, "+
		"as made before and still served, on a fresh Weaviate seeded alike): **%s events/s** (Weaviate %s of CPU per event).\n\n",
		num(t.eventsPerSec()), groupThousands(fmt.Sprint(t.n)), latencyChats, dur(t.perEvent(t.weaviate)), sqsPerEvent(&t), num(r.loadRate),
		num(r.before.eventsPerSec()), dur(r.before.perEvent(r.before.weaviate)))
	p("| load | consumer | events/s sent | end to end p50 / p95 / p99 | in the worker (`total`) p50 / p95 / p99 | SQS calls / event | Weaviate CPU / event | CPUs busy |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(load string, x latencyResult) {
		who, inWorker := "the worker", fmt.Sprintf("%s / %s / %s", dur(x.totalP(50)), dur(x.totalP(95)), dur(x.totalP(99)))
		if x.echo {
			who, inWorker = "echo (the floor)", "—"
		}
		p("| %s | %s | %s | %s / %s / %s | %s | %.3f | %s | %.0f%% |\n", load, who, num(x.achieved),
			dur(x.p(50)), dur(x.p(95)), dur(x.p(99)), inWorker, x.sqsPerEvent(),
			dur(x.weaviate/time.Duration(max(1, x.sent))), 100*float64(x.busy)/float64(max(x.all, 1)))
	}
	for _, x := range r.idle {
		row("20 events/s", x)
	}
	for _, x := range r.loaded {
		row(fmt.Sprintf("60%% (%s events/s)", num(r.loadRate)), x)
	}
	row(fmt.Sprintf("20 events/s, Weaviate %s away each way", dur(r.delay)), r.delayed)
	row(fmt.Sprintf("60%% (%s events/s), collection without tenants (before)", num(r.loadRate)), r.loadedBefore)
	p("\n")
	for _, x := range slices.Concat(r.idle[:], r.loaded[:], []latencyResult{r.delayed, r.loadedBefore}) {
		if x.late > 0 {
			p("- **%s: %d results had not come %s after the last send**; each counts as that late.\n", x.name, x.late, dur(latencyWait))
		}
	}
	for _, x := range []latencyResult{r.idle[1], r.loaded[1]} {
		if x.store != nil {
			p("- %s: SQS calls by API: %s.\n", x.name, sqsByAPI(&runResult{n: x.sent, sqs: x.sqs}))
		}
	}
	p("\n")
}

// targets writes issue 18's targets.
func (r *latencyRowResult) targets(p func(string, ...any)) {
	echo, idle, loaded := r.idle[0], r.idle[1], r.loaded[1]
	p("## Targets (issue 18, row 9)\n\n| target | measured | |\n| --- | ---: | --- |\n")
	bound := echo.p(50) + idle.totalP(50) + goalIdleMargin
	p("| at 20 events/s: e2e p50 ≤ the echo's p50 (%s) + the result's `total` p50 (%s) + %s = %s | %s | %s |\n",
		dur(echo.p(50)), dur(idle.totalP(50)), dur(goalIdleMargin), dur(bound), dur(idle.p(50)), check(idle.p(50) <= bound))
	p("| at 60%% of the throughput: e2e p95 ≤ %d × the 20 events/s p95 (%s) | %s (%.1f×) | %s |\n",
		goalLoadOverIdle, dur(idle.p(95)), dur(loaded.p(95)), ms(loaded.p(95))/ms(max(idle.p(95), 1)), check(loaded.p(95) <= goalLoadOverIdle*idle.p(95)))
	p("| at 60%% of the throughput: e2e p99 ≤ %s | %s | %s |\n", dur(goalLoadP99), dur(loaded.p(99)), check(loaded.p(99) <= goalLoadP99))
	now, before := r.throughput.eventsPerSec(), r.before.eventsPerSec()
	p("| throughput at least as high as before issue 18 (%s events/s without tenants, same stack) | %s (×%.2f) | %s |\n\n",
		num(before), num(now), now/before, check(now >= before))
}

// profileURL fetches a CPU profile of span from a pprof endpoint after
// waiting delay, on its own goroutine, into file; the function it returns
// waits for it.
func profileURL(ctx context.Context, url string, span time.Duration, file string, delay time.Duration) func() error {
	done := make(chan error, 1)
	go func() {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?seconds=%d", url, int(span.Seconds())), nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fmt.Errorf("profile %s: %w", url, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return func() error { return <-done }
}
