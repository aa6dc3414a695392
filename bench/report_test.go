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

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/pipeline"
)

// The Node worker and Weaviate-alone anchors of issue 6, measured earlier on
// this machine class (not in this run): the yardsticks of the goals.
const (
	nodeEventsPerSec   = 150
	nodeCPUPerEvent    = 5 * time.Millisecond
	nodeSQSPerEvent    = 2.1
	goalOverNode       = 2.0
	goalWorkerOverLim  = 1.0
	goalOverheadPerEvt = 150 * time.Microsecond
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
	row1     *runResult
	sweep    []limitResult
	limit    *limitResult
	row3     *runResult
	designs  []designResult
	scaling  []scalingResult
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
	return r.row1 != nil && r.limit != nil && r.row3 != nil && len(r.designs) == 3 && len(r.scaling) > 0
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
		"Weaviate %s (tuned memtables) on loopback with gRPC, the worker as its own process. Every row that uses Weaviate "+
		"gets a fresh server seeded alike: %d chats × %d messages (seeding took %s).\n\n",
		runtime.NumCPU(), devstack.WeaviateVersion, r.sz.chats, 50, dur(r.seed))

	if x := r.row1; x != nil {
		p("## 1. End to end\n\n")
		p("%s user events over %d chats, enqueued at once (SendMessageBatch from 8 senders, took %s), `bin/worker run` at default settings (POOL_SIZE 64, MAX_IN_FLIGHT 256, RECEIVERS 2, LOG_LEVEL info). "+
			"Latency: event sent → its result on the response queue (SQS SentTimestamp).\n\n", groupThousands(fmt.Sprint(x.n)), r.sz.chats, dur(x.enqueue))
		p("| events/s | latency p50 | p95 | p99 | worker CPU / event | peak RSS | SQS calls / event | Weaviate calls / event | PutMetricData calls |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| %s | %s | %s | %s | %s | %s | %.3f | %.2f | %d |\n\n", num(x.eventsPerSec()), dur(percentile(x.e2e, 50)), dur(percentile(x.e2e, 95)), dur(percentile(x.e2e, 99)),
			dur(x.perEvent(x.workerCPU)), mb(x.maxRSS), sqsPerEvent(x), weaviatePerEvent(x), x.putMetrics)
		p("- SQS calls by API (the worker's alone, start to exit; the harness's own calls are counted at its HTTP client and subtracted from the proxy's counts): %s.\n", sqsByAPI(x))
		if s := x.store; s != nil {
			p("- Weaviate calls: %s history searches, %s relevance searches, %s muted lookups, %s batch writes (%.1f objects each), %d schema/ready calls, %d failed.\n",
				groupThousands(fmt.Sprint(s.History)), groupThousands(fmt.Sprint(s.Relevant)), groupThousands(fmt.Sprint(s.Muted)), groupThousands(fmt.Sprint(s.Batches)),
				float64(s.Objects)/float64(max(s.Batches, 1)), s.Schema+s.Ready, s.Failed)
		}
		p("- Latency inside the worker (received → result ready): p50 %s, p95 %s; behind it the backlog: %d events arrived at once.\n",
			dur(percentile(x.inWorker, 50)), dur(percentile(x.inWorker, 95)), x.n)
		p("- Results: %.1f history and %.1f relevant messages each; %d degraded.\n", x.history, x.relevant, x.degraded)
		p("- CPU per event during the load: %s.\n", cpuSplit(x.n, x.workerCPU, x.weaviate, x.harness, x.busy, x.all))
		p("- Against the Node worker (anchor of issue 6, not measured in this run: %d events/s, %s CPU/event, %.1f SQS calls/event): %.1f× the events/s, %.0f× less CPU per event, %.0f× fewer SQS calls per event.\n\n",
			nodeEventsPerSec, dur(nodeCPUPerEvent), nodeSQSPerEvent, x.eventsPerSec()/nodeEventsPerSec,
			float64(nodeCPUPerEvent)/float64(x.perEvent(x.workerCPU)), nodeSQSPerEvent/sqsPerEvent(x))
	}

	if l := r.limit; l != nil {
		p("## 2. The limit: the naive mix straight at Weaviate\n\n")
		p("A closed-loop generator in the bench process, no queue and no pool: per event the two history searches, the relevance search, "+
			"the muted lookup and the store, one after another, through the store package (gRPC searches, REST muted lookup, batched inserts shared across the loops). "+
			"Concurrency sweep, %s per level on one fresh Weaviate; the best level then does the same %s events as row 1 on another.\n\n",
			dur(r.sz.limitSlice), groupThousands(fmt.Sprint(l.n)))
		p("| loops | events-worth/s | Weaviate CPU / event |\n| ---: | ---: | ---: |\n")
		for _, s := range r.sweep {
			p("| %d | %s | %s |\n", s.concurrency, num(s.eventsPerSec()), dur(s.weaviate/time.Duration(max(1, s.n))))
		}
		p("\n| | events(-worth)/s | Weaviate calls / event | Weaviate CPU / event |\n| --- | ---: | ---: | ---: |\n")
		p("| the limit: naive mix at %d loops, %s events-worth | %s | %.2f | %s |\n", l.concurrency, groupThousands(fmt.Sprint(l.n)), num(l.eventsPerSec()),
			float64(l.calls.Calls())/float64(l.n), dur(l.weaviate/time.Duration(l.n)))
		if x := r.row1; x != nil {
			p("| the worker (row 1) | %s | %.2f | %s |\n\n", num(x.eventsPerSec()), weaviatePerEvent(x), dur(x.perEvent(x.weaviate)))
			p("**worker ÷ limit = %.2f** (goal ≥ %.1f: %s).\n\n", x.eventsPerSec()/l.eventsPerSec(), goalWorkerOverLim, check(x.eventsPerSec()/l.eventsPerSec() >= goalWorkerOverLim))
		}
		p("- CPU per event during the limit run: %s.\n\n", cpuSplit(l.n, 0, l.weaviate, l.harness, l.busy, l.all))
	}

	if x := r.row3; x != nil {
		p("## 3. The worker's own overhead\n\n")
		p("The same %s events through the same worker code (`app.Run`, built as bench/cmd/benchworker) with `memstore.BenchOnlyMemoryStore`, "+
			"a benchmark-only stand-in that answers every store call at once from memory: SQS handling, the pool, combining, publishing and logging are all that cost.\n\n",
			groupThousands(fmt.Sprint(x.n)))
		p("| events/s | latency p50 | p95 | worker CPU / event | peak RSS | SQS calls / event |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| %s | %s | %s | %s | %s | %.3f |\n\n", num(x.eventsPerSec()), dur(percentile(x.e2e, 50)), dur(percentile(x.e2e, 95)),
			dur(x.perEvent(x.workerCPU)), mb(x.maxRSS), sqsPerEvent(x))
		p("**Worker CPU per event %s** (goal ≤ %s: %s).\n\n", dur(x.perEvent(x.workerCPU)), dur(goalOverheadPerEvt), check(x.perEvent(x.workerCPU) <= goalOverheadPerEvt))
		p("- SQS calls by API: %s.\n", sqsByAPI(x))
		p("- CPU per event during the load: %s.\n\n", cpuSplit(x.n, x.workerCPU, 0, x.harness, x.busy, x.all))
	}

	if len(r.designs) == 3 {
		p("## 4. The old designs side by side\n\n")
		p("Same Weaviate (fresh, seeded alike), same store client, %d events each (%d per chat, later in time for each design; chatprep runs last, on the collection the others grew). "+
			"No SQS: the designs are compared on preprocessing alone. Latency: one message's handling, start to result ready.\n\n", r.designs[0].n, r.sz.designPerChat)
		p("| design | events/s | latency p50 | p95 | events/s ÷ serial |\n| --- | ---: | ---: | ---: | ---: |\n")
		labels := map[string]string{
			"serial":    "one message at a time, its 5 calls in series (the original Lambda)",
			"executor5": "one message at a time on its own 5-worker executor (the Lambda of the seed)",
			"chatprep":  fmt.Sprintf("chatprep: the pipeline on the shared pool (POOL_SIZE %d), up to 256 messages in flight", 64),
		}
		for _, d := range r.designs {
			p("| %s | %s | %s | %s | %.1f× |\n", labels[d.name], num(d.eventsPerSec()), dur(percentile(d.lat, 50)), dur(percentile(d.lat, 95)), d.eventsPerSec()/r.designs[0].eventsPerSec())
		}
		p("\nchatprep ÷ executor: **%.1f×** the events/s.\n\n", r.designs[2].eventsPerSec()/r.designs[1].eventsPerSec())
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

	if r.row1 != nil && r.limit != nil && r.row3 != nil {
		x := r.row1
		p("## Goals\n\n| goal | measured | |\n| --- | ---: | --- |\n")
		p("| at least %.0f× the Node worker's %d events/s | %s events/s (%.1f×) | %s |\n", goalOverNode, nodeEventsPerSec, num(x.eventsPerSec()), x.eventsPerSec()/nodeEventsPerSec, check(x.eventsPerSec() >= goalOverNode*nodeEventsPerSec))
		ratio := x.eventsPerSec() / r.limit.eventsPerSec()
		p("| worker ÷ limit at least %.1f | %.2f | %s |\n", goalWorkerOverLim, ratio, check(ratio >= goalWorkerOverLim))
		o := r.row3.perEvent(r.row3.workerCPU)
		p("| worker CPU per event at most %s (row 3) | %s | %s |\n\n", dur(goalOverheadPerEvt), dur(o), check(o <= goalOverheadPerEvt))
	}
	p("History limit %d and relevance limit %d per result, as the worker's defaults.\n", pipeline.DefaultHistoryLimit, pipeline.DefaultRelevanceLimit)
	return b.String()
}
