package bench

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/pipeline"
)

// The anchors and targets of issue 13: the Node worker (bbc/sqs-consumer,
// AWS SDK v3, the same Weaviate work with Promise.all) measured on this
// machine class on issue 13's workload, 2,000 events over 100 chats on a
// fresh Weaviate (not in this run).
const (
	nodeEventsPerSec  = 130
	nodeCPUPerEvent   = 4 * time.Millisecond
	goalOverNode      = 2.5
	goalWorkerOverLim = 0.95
	goalWorkerCPU     = 400 * time.Microsecond
	goalSeedMargin    = 5 * time.Millisecond // chatprep's p50 at most the slowest single call's + this
	goalSeedOverExec  = 1.0 / 3              // and at most this share of the executor's
)

type scalingResult struct {
	scaling
	runResult
}

// report collects the rows of one run.
type report struct {
	sz       sizes
	at       time.Time
	loadavg  string
	seed     time.Duration
	settle   time.Duration
	warm     limitResult // the sweep's warm-up slice
	sweep    []limitResult
	kinds    []limitResult
	limit    *limitResult
	row1     *runResult
	row1v2   *runResult // chatprep v2's worker on the same events
	row1cmp  *runResult // the worker at -compare's commit on the same events
	seedRows []seedRow
	context  *contextReport
	lengths  []lengthResult
	overhead *runResult
	scaling  []scalingResult
	tracing  *tracingResult
	peer     *peerResult
	latency  *latencyRowResult
	scale    []scaleResult
	took     time.Duration
	commit   string
	dirty    bool
	cpuModel string
}

func newReport() *report { return &report{} }

func (r *report) start(sz sizes) {
	r.sz = sz
	r.at = time.Now().UTC()
	r.loadavg = sampleCPU(0).loadavg
	r.cpuModel = cpuModel()
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		r.commit = strings.TrimSpace(string(out))
	}
	// Only tracked files under the code the bench runs count as dirty.
	if err := exec.Command("git", "diff", "--quiet", "HEAD", "--", "../internal", "../worker", "../bench", "../go.mod").Run(); err != nil {
		r.dirty = true
	}
}

func (r *report) complete() bool {
	return r.row1 != nil && r.limit != nil && len(r.seedRows) == len(seedDelays) && len(r.lengths) == len(chatLengths) &&
		r.overhead != nil && len(r.scaling) > 0 && r.tracing != nil && r.context != nil && r.context.burst != nil && r.peer != nil && r.latency != nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// write puts the table in dir/LATEST.md and dir/YYYY-MM-DD-<commit>.md.
func (r *report) write(dir, root, table string) error {
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s.md", r.at.Format("2006-01-02"), cmpOr(r.commit, "nocommit"))
	for _, f := range []string{"LATEST.md", name} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(table), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("written to %s and %s\n", filepath.Join(dir, "LATEST.md"), filepath.Join(dir, name))
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Number formatting.
func num(f float64) string {
	switch {
	case f >= 100:
		return groupThousands(fmt.Sprintf("%.0f", f))
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

func groupThousands(s string) string {
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", ms(d))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms(d))
	default:
		return fmt.Sprintf("%.0f µs", us(d))
	}
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func check(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func sqsPerEvent(r *runResult) float64 {
	var n int64
	for _, v := range r.sqs {
		n += v
	}
	return float64(n) / float64(r.n)
}

func sqsByAPI(r *runResult) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.sqs)) {
		parts = append(parts, fmt.Sprintf("%s %s (%.3f/event)", strings.TrimPrefix(k, "SQS."), groupThousands(fmt.Sprint(r.sqs[k])), float64(r.sqs[k])/float64(r.n)))
	}
	return strings.Join(parts, ", ")
}

func weaviatePerEvent(r *runResult) float64 {
	if r.store == nil {
		return 0
	}
	return float64(r.store.Calls()) / float64(r.n)
}

// cpuSplit says where the CPU of a load window went, per event.
func cpuSplit(n int, worker, weaviate, harness, busy, all time.Duration) string {
	other := busy - worker - weaviate - harness
	per := func(d time.Duration) string { return dur(d / time.Duration(max(1, n))) }
	return fmt.Sprintf("worker %s, Weaviate %s, kumo + proxy + harness %s, everything else %s; the %d CPUs were %.0f%% busy",
		per(worker), per(weaviate), per(harness), per(max(other, 0)), runtime.NumCPU(), 100*float64(busy)/float64(max(all, 1)))
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	commit := cmpOr(r.commit, "unknown")
	if r.dirty {
		commit += " (with uncommitted changes)"
	}
	p("# chatprep bench\n\n")
	p("Run %s, commit `%s`, %s %s/%s, %d cores (%s), load average before the run: %s. `make bench` took %s.\n\n",
		r.at.Format("2006-01-02 15:04 UTC"), commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.cpuModel, r.loadavg, r.took.Round(time.Second))
	p("The embedded stack, all on these %d cores: kumo (SQS, CloudWatch) in the bench process behind the devstack proxy, "+
		"Weaviate %s (tuned memtables) on loopback, the worker as its own process at its defaults (gRPC searches). Every row gets a fresh Weaviate, "+
		"seeded (rows 1, 2, 5: %d chats × %d messages, %s) and then left to settle until its CPU is idle (%s after the seed), "+
		"so that no row measures the flush of what the seed wrote.\n\n",
		runtime.NumCPU(), devstack.WeaviateVersion, r.sz.chats, workload.SeedMessages, dur(r.seed), dur(r.settle))

	if r.limit != nil && r.row1 != nil {
		l, x := r.limit, r.row1
		p("## 1. Throughput: the worker against the limit\n\n")
		p("The limit is a closed-loop generator in the bench process making exactly the worker's Weaviate calls per event, at once as the pipeline does: "+
			"the history search, the relevance search and its hits' neighbours, the references search over gRPC, the muted lookup by the state's object id, and the store through the batched writes, "+
			"through the same store package. No queue, no pool, no SQS. The sweep raises the loops until a level gains less than 5%%: "+
			"past that knee Weaviate is saturated and more loops only queue. Each level runs %s, after a warm-up slice at the first level "+
			"(the first writes and BM25 searches after the seed run several times slower than the next: here %s events/s at %s of Weaviate CPU each).\n\n",
			dur(r.sz.sweepSlice), num(r.warm.eventsPerSec()), dur(r.warm.weaviatePerEvent()))
		p("| loops | events-worth/s | Weaviate CPU / event |\n| ---: | ---: | ---: |\n")
		monotone := true
		for i, s := range r.sweep {
			p("| %d | %s | %s |\n", s.concurrency, num(s.eventsPerSec()), dur(s.weaviatePerEvent()))
			monotone = monotone && (i == 0 || s.eventsPerSec() >= r.sweep[i-1].eventsPerSec())
		}
		if !monotone {
			p("\nA level below the one before it is Weaviate, not the loops: its CPU per event rose with it. With writes going on, Weaviate's cost " +
				"per event swings by a third and more from one few-second slice to the next at the same concurrency (its BM25 search walks the " +
				"write buffer filled since the last flush, and segment compactions come in bursts), and the 2 CPUs are saturated at every level " +
				"past the knee.\n")
		}
		p("\nEach call kind alone (%d loops, %s each): what Weaviate spends on one call.\n\n", r.sz.kindLoops, dur(r.sz.kindSlice))
		p("| call | calls/s | Weaviate CPU / call |\n| --- | ---: | ---: |\n")
		var perEvent time.Duration
		for _, k := range r.kinds {
			p("| %s | %s | %s |\n", k.label, num(k.eventsPerSec()), dur(k.weaviatePerEvent()))
			perEvent += k.weaviatePerEvent()
		}
		p("| sum: one event's calls | | %s |\n\n", dur(perEvent))
		p("Then, each on a fresh Weaviate seeded alike, the same %s events (%d chats × %d): the generator at its best level, and `bin/worker run` at its defaults "+
			"with the events enqueued at once (SendMessageBatch from 8 senders, took %s); latency is sent → result on the response queue.\n\n",
			groupThousands(fmt.Sprint(l.n)), r.sz.chats, r.sz.perChat, dur(x.enqueue))
		p("| | events/s | Weaviate CPU / event | worker CPU / event | Weaviate calls / event | SQS calls / event | latency p50 | p95 |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| the limit (%d loops) | %s | %s | — | %.2f | — | — | — |\n", l.concurrency, num(l.eventsPerSec()), dur(l.weaviatePerEvent()), float64(l.calls.Calls())/float64(l.n))
		p("| the worker | %s | %s | %s | %.2f | %.3f | %s | %s |\n", num(x.eventsPerSec()), dur(x.perEvent(x.weaviate)), dur(x.perEvent(x.workerCPU)),
			weaviatePerEvent(x), sqsPerEvent(x), dur(percentile(x.e2e, 50)), dur(percentile(x.e2e, 95)))
		if v := r.row1v2; v != nil {
			p("| the worker of chatprep v2 (`%s`) | %s | %s | %s | %.2f | %.3f | %s | %s |\n", v2Commit[:12], num(v.eventsPerSec()), dur(v.perEvent(v.weaviate)), dur(v.perEvent(v.workerCPU)),
				weaviatePerEvent(v), sqsPerEvent(v), dur(percentile(v.e2e, 50)), dur(percentile(v.e2e, 95)))
		}
		if v := r.row1cmp; v != nil {
			p("| the worker at `%s` (-compare) | %s | %s | %s | %.2f | %.3f | %s | %s |\n", short(*flagCompare), num(v.eventsPerSec()), dur(v.perEvent(v.weaviate)), dur(v.perEvent(v.workerCPU)),
				weaviatePerEvent(v), sqsPerEvent(v), dur(percentile(v.e2e, 50)), dur(percentile(v.e2e, 95)))
		}
		p("\n")
		if v := r.row1v2; v != nil {
			p("v3 against v2 (issue 17's cost of the context, on a Weaviate seeded alike): events/s **×%.2f**, Weaviate CPU per event **×%.2f**, worker CPU per event ×%.2f.\n\n",
				x.eventsPerSec()/v.eventsPerSec(), float64(x.perEvent(x.weaviate))/float64(v.perEvent(v.weaviate)),
				float64(x.perEvent(x.workerCPU))/float64(v.perEvent(v.workerCPU)))
		}
		if v := r.row1cmp; v != nil {
			p("This commit against `%s`: events/s ×%.2f, Weaviate CPU per event ×%.2f, worker CPU per event ×%.2f.\n\n", short(*flagCompare),
				x.eventsPerSec()/v.eventsPerSec(), float64(x.perEvent(x.weaviate))/float64(v.perEvent(v.weaviate)),
				float64(x.perEvent(x.workerCPU))/float64(v.perEvent(v.workerCPU)))
		}
		p("**worker ÷ limit = %.2f**; the worker does **%.1f×** the Node worker's %d events/s, on **%s** of CPU per event (the Node worker: %s).\n\n",
			x.eventsPerSec()/l.eventsPerSec(), x.eventsPerSec()/nodeEventsPerSec, nodeEventsPerSec, dur(x.perEvent(x.workerCPU)), dur(nodeCPUPerEvent))
		p("- SQS calls by API (the worker's alone, start to exit): %s; peak RSS %s; %d PutMetricData calls.\n", sqsByAPI(x), mb(x.maxRSS), x.putMetrics)
		if s := x.store; s != nil {
			p("- Weaviate calls: %s history searches, %s relevance searches, %s neighbour searches, %s reference searches, %s muted lookups, %s batch writes (%.1f objects each), %d failed.\n",
				groupThousands(fmt.Sprint(s.History)), groupThousands(fmt.Sprint(s.Relevant)), groupThousands(fmt.Sprint(s.Following)),
				groupThousands(fmt.Sprint(s.References)), groupThousands(fmt.Sprint(s.Muted)), groupThousands(fmt.Sprint(s.Batches)),
				float64(s.Objects)/float64(max(s.Batches, 1)), s.Failed)
		}
		p("- Latency inside the worker (received → result ready): p50 %s, p95 %s (all %d events arrived at once).\n", dur(percentile(x.inWorker, 50)), dur(percentile(x.inWorker, 95)), x.n)
		p("- Results: %.1f history and %.1f relevant messages each; %d degraded.\n", x.history, x.relevant, x.degraded)
		p("- CPU per event, the worker's run: %s.\n", cpuSplit(x.n, x.workerCPU, x.weaviate, x.harness, x.busy, x.all))
		p("- CPU per event, the limit's run: %s.\n\n", cpuSplit(l.n, 0, l.weaviate, l.harness, l.busy, l.all))
	}

	if len(r.seedRows) > 0 {
		p("## 2. The seed's table: latency when every Weaviate call crosses a network\n\n")
		p("The devstack's delaying TCP proxy in front of Weaviate's REST and gRPC ports adds the latency to every chunk both ways, and a new connection " +
			"first waits two round trips (TCP, then TLS 1.3, as a production Weaviate is reached over HTTPS). The seed's designs as the seed describes them: " +
			"REST and GraphQL (its client had no gRPC) on a new connection per call (\"connection pooling planned next\"), one message at a time, " +
			"its five calls one after another (serial) or all at once on a 5-thread executor. chatprep: the pipeline on the shared pool with its pooled " +
			"gRPC connections, one message at a time. Latency: one message's preprocessing, start to result ready. " +
			"End to end (row 9): `bin/worker run` as a process, events sent one at a time at 20 events/s, producer send → result received " +
			"from the response queue, beside the echo consumer's floor.\n\n")
		p("| one-way latency | single calls, p50 (chatprep's connections) | serial p50 / p95 | 5-thread executor p50 / p95 | chatprep p50 / p95 | chatprep ÷ executor (p50) | chatprep v3 p50 / p95 | chatprep end to end p50 / p95 / p99 (echo p50) |\n")
		p("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, row := range r.seedRows {
			var calls []string
			for _, c := range row.calls {
				calls = append(calls, fmt.Sprintf("%s %s", c.name, dur(percentile(c.lat, 50))))
			}
			s, e, c, v3 := row.design("serial"), row.design("executor5"), row.design("chatprep"), row.design("chatprep-v3")
			e2e := "—"
			if l := r.latency; l != nil && l.delay == row.delay {
				e2e = fmt.Sprintf("%s / %s / %s (%s)", dur(l.delayed.p(50)), dur(l.delayed.p(95)), dur(l.delayed.p(99)), dur(l.idle[0].p(50)))
			}
			p("| %s | %s | %s / %s | %s / %s | %s / %s | %.2f | %s / %s | %s |\n", dur(row.delay), strings.Join(calls, ", "),
				dur(percentile(s.lat, 50)), dur(percentile(s.lat, 95)), dur(percentile(e.lat, 50)), dur(percentile(e.lat, 95)),
				dur(percentile(c.lat, 50)), dur(percentile(c.lat, 95)), ms(percentile(c.lat, 50))/ms(percentile(e.lat, 50)),
				dur(percentile(v3.lat, 50)), dur(percentile(v3.lat, 95)), e2e)
		}
		p("\nchatprep runs the seed's work (history, relevance, muted, store); chatprep v3 the worker's defaults, whose relevance task " +
			"makes a second call for the hits' neighbours (it needs the hits), so its latency is two round trips.\n\n")
	}

	if len(r.lengths) > 0 {
		p("## 3. Cost by a chat's length\n\n")
		p("One fresh Weaviate holding chats of 10, 100 and 1,000 messages side by side; the limit's generator (%d loops, %s each) on the chats of one length at a time.\n\n",
			r.sz.lengthLoops, dur(r.sz.lengthSlice))
		p("| messages per chat | chats | events-worth/s | Weaviate CPU / event | Weaviate calls / event |\n| ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range r.lengths {
			chats := 0
			for _, c := range chatLengths {
				if c.messages == l.messages {
					chats = c.chats
				}
			}
			p("| %s | %d | %s | %s | %.2f |\n", groupThousands(fmt.Sprint(l.messages)), chats, num(l.eventsPerSec()), dur(l.weaviatePerEvent()), float64(l.calls.Calls())/float64(max(l.n, 1)))
		}
		p("\n")
	}

	if x := r.overhead; x != nil {
		p("## 4. The worker's own overhead\n\n")
		p("The same %s events through the same worker code (`app.Run`, built as bench/cmd/benchworker) with `memstore.BenchOnlyMemoryStore`, "+
			"a benchmark-only stand-in that answers every store call at once from memory: SQS handling, the pool, combining, publishing and logging are all that cost.\n\n",
			groupThousands(fmt.Sprint(x.n)))
		p("| events/s | latency p50 | p95 | worker CPU / event | peak RSS | SQS calls / event |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| %s | %s | %s | %s | %s | %.3f |\n\n", num(x.eventsPerSec()), dur(percentile(x.e2e, 50)), dur(percentile(x.e2e, 95)),
			dur(x.perEvent(x.workerCPU)), mb(x.maxRSS), sqsPerEvent(x))
		p("- SQS calls by API: %s.\n", sqsByAPI(x))
		p("- CPU per event during the load: %s.\n\n", cpuSplit(x.n, x.workerCPU, 0, x.harness, x.busy, x.all))
	}

	if len(r.scaling) > 0 {
		p("## 5. Scaling with configuration\n\n")
		p("`bin/worker run` on one fresh Weaviate, each setting %s events (%d per chat) enqueued at once, in this order (later settings meet a larger collection).\n\n",
			groupThousands(fmt.Sprint(r.scaling[0].n)), r.sz.scalingPerChat)
		p("| POOL_SIZE | MAX_IN_FLIGHT | GOMAXPROCS | events/s | latency p95 | in-worker p95 | worker CPU / event | peak RSS | Weaviate calls / event |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.scaling {
			procs := fmt.Sprint(runtime.NumCPU())
			if s.procs > 0 {
				procs = fmt.Sprint(s.procs)
			}
			p("| %d | %d | %s | %s | %s | %s | %s | %s | %.2f |\n", s.pool, s.inFlight, procs, num(s.eventsPerSec()), dur(percentile(s.e2e, 95)),
				dur(percentile(s.inWorker, 95)), dur(s.perEvent(s.workerCPU)), mb(s.maxRSS), weaviatePerEvent(&s.runResult))
		}
		p("\n")
	}

	if r.tracing != nil {
		r.tracing.markdown(p)
	}
	if r.context != nil {
		r.context.markdown(p)
	}
	if r.peer != nil {
		r.peer.markdown(p)
	}
	if r.latency != nil {
		r.latency.markdown(p)
	}

	scaleMarkdown(p, "10. Cost by the number of stored messages (`make bench-scale` adds 1 million: bench/results/SCALE.md)", r.scale)

	if r.row1 != nil && r.limit != nil {
		x := r.row1
		p("## Targets (issue 13)\n\n| target | measured | |\n| --- | ---: | --- |\n")
		ratio := x.eventsPerSec() / r.limit.eventsPerSec()
		p("| worker ÷ the limit at least %.2f (row 1) | %.2f | %s |\n", goalWorkerOverLim, ratio, check(ratio >= goalWorkerOverLim))
		cpu := x.perEvent(x.workerCPU)
		p("| worker CPU per event at most %s against the real Weaviate (row 1) | %s | %s |\n", dur(goalWorkerCPU), dur(cpu), check(cpu <= goalWorkerCPU))
		for _, row := range r.seedRows {
			if row.delay != 100*time.Millisecond {
				continue
			}
			c, e, slow := percentile(row.design("chatprep").lat, 50), percentile(row.design("executor5").lat, 50), row.slowestCall()
			sp := percentile(slow.lat, 50)
			p("| at 100 ms a call: chatprep's p50 at most the slowest single call's (%s, %s) + %s | %s | %s |\n", slow.name, dur(sp), dur(goalSeedMargin), dur(c), check(c <= sp+goalSeedMargin))
			p("| at 100 ms a call: chatprep's p50 at most a third of the executor's (%s) | %.2f of it | %s |\n", dur(e), ms(c)/ms(e), check(ms(c) <= goalSeedOverExec*ms(e)))
		}
		p("| events/s at least %.1f× the Node worker's %d (row 1) | %s (%.1f×) | %s |\n\n", goalOverNode, nodeEventsPerSec, num(x.eventsPerSec()),
			x.eventsPerSec()/nodeEventsPerSec, check(x.eventsPerSec() >= goalOverNode*nodeEventsPerSec))
	}
	if r.context != nil {
		r.context.targets(p, r.row1, r.row1v2)
	}
	if r.peer != nil {
		r.peer.targets(p)
	}
	if r.latency != nil {
		r.latency.targets(p)
	}
	p("History limit %d per role, relevance limit %d passages, token budget %d, as the worker's defaults.\n",
		pipeline.DefaultHistoryLimit, pipeline.DefaultRelevanceLimit, pipeline.DefaultBudget)
	return b.String()
}
