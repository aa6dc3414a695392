package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
)

// Cost by the size of the store: the bench's standard workload (row 1's
// events over the same 100 chats of 50 seed messages) against one Weaviate
// that holds more and more messages of other chats, 10 thousand, 100
// thousand and 1 million (filler chats of workload.FillerPerChat messages,
// loaded with `worker import`). The chats the workload touches stay the
// same size, so what changes is only what everyone else stored: what the
// store costs as the collection grows, and what bounds it.

// scaleLevels are the stored messages of `make bench` (row 10) and of `make
// bench-scale`.
var (
	benchScaleLevels = []int{10_000, 100_000}
	fullScaleLevels  = []int{10_000, 100_000, 1_000_000}
)

// scaleResult is one level: the import that brought the store there, what
// Weaviate holds then, and the worker's run.
type scaleResult struct {
	chats       int           // the bench's chats, which the run's events go to
	stored      int           // messages stored when the run started
	imported    int           // messages this level's import added
	importTook  time.Duration // the import process, start to exit
	importCPU   time.Duration // Weaviate's CPU during the import
	importSelf  time.Duration // the import process's own CPU
	importRSS   int64         // the import process's peak resident memory
	settle      time.Duration
	rss         int64 // Weaviate's resident memory after the import settled
	rssAnon     int64 // of it, its own (heap, stacks): what it needs
	rssFile     int64 // of it, pages of files it maps (its segments): cache the kernel may drop
	disk        int64 // bytes of Weaviate's data directory (blocks used)
	forgetTook  time.Duration
	forgotCount int64
	run         runResult
}

func (s scaleResult) importRate() float64 { return float64(s.imported) / s.importTook.Seconds() }

// scaleRow grows one fresh Weaviate level by level and measures each; the
// worker's events of each level are its own (a later level's are later in
// time), perChat per chat of the bench's chats.
func scaleRow(ctx context.Context, e *env, b *testing.B, levels []int, perChat int) ([]scaleResult, error) {
	chats := benchChats
	if *flagQuick {
		chats = 20
	}
	p := e.startPhase(b, seedChats(chats))
	defer p.stop()
	w := p.stack.Weaviate
	stored := chats * workload.SeedMessages
	filled := 0 // filler messages imported so far
	var out []scaleResult
	for i, level := range levels {
		r := scaleResult{chats: chats}
		// Import the filler that brings the store to level.
		n := max(level-stored, 0)
		file := filepath.Join(e.tmp, fmt.Sprintf("filler-%d.jsonl", i))
		f, err := os.Create(file)
		if err != nil {
			return out, err
		}
		err = workload.WriteFiller(f, filled, filled+n)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, err
		}
		cpu0 := procCPU(w.Pid())
		start := time.Now()
		if r.imported, r.importSelf, r.importRSS, err = importFile(ctx, e.worker, w.URL, w.GRPCAddr, file); err != nil {
			return out, err
		}
		r.importTook, r.importCPU = time.Since(start), procCPU(w.Pid())-cpu0
		os.Remove(file)
		if r.imported != n {
			return out, fmt.Errorf("import of %d filler messages imported %d", n, r.imported)
		}
		filled += n
		stored += n
		r.settle = settle(ctx, w.Pid())
		r.rss, r.rssAnon, r.rssFile = procRSS(w.Pid())
		r.disk = dirBlocks(filepath.Join(w.DataDir(), "data"))

		// Erasing one filler chat at this size.
		start = time.Now()
		if r.forgotCount, err = forgetChat(ctx, e.worker, w.URL, w.GRPCAddr, workload.FillerChatID(0)); err != nil {
			return out, err
		}
		r.forgetTook = time.Since(start)
		stored -= int(r.forgotCount)

		r.stored = stored
		events := workload.Events(fmt.Sprintf("scale%d", i), chats, perChat, workload.EventBase.Add(time.Duration(3+i)*time.Hour))
		if r.run, err = p.run(ctx, workerRun{name: fmt.Sprintf("scale%d", i), bin: e.worker, args: []string{"run"}, events: events}); err != nil {
			return out, err
		}
		stored += len(events)
		out = append(out, r)
		settle(ctx, w.Pid()) // the run's writes flushed before the next import
	}
	return out, nil
}

// importFile runs `worker import FILE` and returns how many it imported,
// its CPU time and its peak resident memory.
func importFile(ctx context.Context, bin, url, grpcAddr, file string) (int, time.Duration, int64, error) {
	out, ps, err := runTool(ctx, bin, url, grpcAddr, "import", file)
	if err != nil {
		return 0, 0, 0, err
	}
	var cpu time.Duration
	var rss int64
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		cpu, rss = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()), ru.Maxrss<<10
	}
	var n, rejected int
	if _, err := fmt.Sscanf(out, "imported %d, rejected %d", &n, &rejected); err != nil || rejected != 0 {
		return n, cpu, rss, fmt.Errorf("worker import printed %q", out)
	}
	return n, cpu, rss, nil
}

// forgetChat runs `worker forget --chat ID` and returns how many messages
// it removed.
func forgetChat(ctx context.Context, bin, url, grpcAddr, chat string) (int64, error) {
	out, _, err := runTool(ctx, bin, url, grpcAddr, "forget", "--chat", chat)
	if err != nil {
		return 0, err
	}
	var n int64
	if _, err := fmt.Sscanf(out, "removed %d messages", &n); err != nil {
		return 0, fmt.Errorf("worker forget printed %q", out)
	}
	return n, nil
}

// runTool runs the worker binary's command against a Weaviate and returns
// its stdout and how it ended.
func runTool(ctx context.Context, bin, url, grpcAddr string, args ...string) (string, *os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "WEAVIATE_URL=" + url, "WEAVIATE_GRPC_ADDR=" + grpcAddr}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return stdout.String(), cmd.ProcessState, fmt.Errorf("worker %s: %w\n%s", strings.Join(args, " "), err, tail)
	}
	return stdout.String(), cmd.ProcessState, nil
}

// procRSS is a process's resident memory, and of it the anonymous part
// (its heap) and the file-backed part (mapped files), from
// /proc/PID/status.
func procRSS(pid int) (rss, anon, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n << 10
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "VmRSS":
			rss = kb(v)
		case "RssAnon":
			anon = kb(v)
		case "RssFile":
			file = kb(v)
		}
	}
	return rss, anon, file
}

// dirBlocks is the disk space the files under dir take (as du counts it).
func dirBlocks(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// scaleTasks are the tasks of timings_ms shown, in this order; others
// (added later) follow sorted.
var scaleTasks = []string{"message_history", "relevance_search", "muted_status", "store", "preprocessing", "total"}

func tasksOf(rs []scaleResult) []string {
	seen := map[string]bool{}
	for _, r := range rs {
		for k := range r.run.tasks {
			seen[k] = true
		}
	}
	var out []string
	for _, k := range scaleTasks {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	return append(out, slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})...)
}

// scaleMarkdown writes the scale rows.
func scaleMarkdown(p func(string, ...any), title string, rs []scaleResult) {
	if len(rs) == 0 {
		return
	}
	p("## %s\n\n", title)
	p("One fresh Weaviate, seeded with the bench's %d chats × %d messages, then grown by `worker import` of filler chats of %d messages each "+
		"(`bench/cmd/genhistory`'s history, generated in the run) to each size; at each size, once Weaviate settled: its resident memory and data directory, "+
		"`worker forget --chat` of one filler chat, and `bin/worker run` with %s events of the bench's chats enqueued at once (row 1's workload, "+
		"those chats' own sizes unchanged).\n\n",
		rs[0].chats, workload.SeedMessages, workload.FillerPerChat, groupThousands(fmt.Sprint(rs[0].run.n)))
	p("| messages stored | import rate | Weaviate CPU / imported message | import process: CPU / message, peak RSS | Weaviate RSS (its own + mapped files) | data directory | forget a chat | events/s | Weaviate CPU / event | worker CPU / event | latency p50 / p95 |\n")
	p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		x := &r.run
		p("| %s | %s msg/s (%s in %s) | %s | %s, %s | %s (%s + %s) | %s | %s | %s | %s | %s | %s / %s |\n",
			groupThousands(fmt.Sprint(r.stored)), num(r.importRate()), groupThousands(fmt.Sprint(r.imported)), dur(r.importTook),
			dur(r.importCPU/time.Duration(max(1, r.imported))), dur(r.importSelf/time.Duration(max(1, r.imported))), mb(r.importRSS), mb(r.rss), mb(r.rssAnon), mb(r.rssFile), mb(r.disk), dur(r.forgetTook),
			num(x.eventsPerSec()), dur(x.perEvent(x.weaviate)), dur(x.perEvent(x.workerCPU)),
			dur(percentile(x.e2e, 50)), dur(percentile(x.e2e, 95)))
	}
	tasks := tasksOf(rs)
	p("\nEach task's time inside the worker (`timings_ms`), p50 / p95:\n\n| messages stored | %s |\n| ---: |%s\n",
		strings.Join(tasks, " | "), strings.Repeat(" ---: |", len(tasks)))
	for _, r := range rs {
		var cells []string
		for _, t := range tasks {
			ds := r.run.tasks[t]
			cells = append(cells, fmt.Sprintf("%s / %s", dur(percentile(ds, 50)), dur(percentile(ds, 95))))
		}
		p("| %s | %s |\n", groupThousands(fmt.Sprint(r.stored)), strings.Join(cells, " | "))
	}
	first, last := rs[0], rs[len(rs)-1]
	if len(rs) < 2 {
		p("\n")
		return
	}
	// What each million more messages adds, from the first size to the last.
	perMillion := func(a, b int64) string {
		return mb(int64(float64(b-a) * 1e6 / float64(max(1, last.stored-first.stored))))
	}
	p("\nFrom %s to %s messages (×%.0f): events/s ×%.2f, Weaviate CPU per event ×%.2f, relevance p95 ×%.2f, history p95 ×%.2f. "+
		"Each million messages more took %s of Weaviate's own memory (%s resident with the mapped files) and %s of disk (from %s, %s and %s at %s).\n\n",
		groupThousands(fmt.Sprint(first.stored)), groupThousands(fmt.Sprint(last.stored)), float64(last.stored)/float64(first.stored),
		last.run.eventsPerSec()/first.run.eventsPerSec(),
		float64(last.run.perEvent(last.run.weaviate))/float64(max(1, first.run.perEvent(first.run.weaviate))),
		ratioP95(last, first, "relevance_search"), ratioP95(last, first, "message_history"),
		perMillion(first.rssAnon, last.rssAnon), perMillion(first.rss, last.rss), perMillion(first.disk, last.disk),
		mb(first.rssAnon), mb(first.rss), mb(first.disk), groupThousands(fmt.Sprint(first.stored)))
}

func ratioP95(a, b scaleResult, task string) float64 {
	pb := percentile(b.run.tasks[task], 95)
	if pb == 0 {
		return 0
	}
	return float64(percentile(a.run.tasks[task], 95)) / float64(pb)
}

// BenchmarkScale is `make bench-scale`: the scale rows at 10 thousand, 100
// thousand and 1 million stored messages, from one run, written to
// bench/results/SCALE.md (with -results DIR).
func BenchmarkScale(b *testing.B) {
	started := time.Now()
	e := newEnv(b)
	rep := e.report
	rep.start(benchSizes())
	levels := fullScaleLevels
	if *flagQuick {
		levels = []int{5_000, 20_000}
	}
	var rs []scaleResult
	for range b.N {
		var err error
		if rs, err = scaleRow(context.Background(), e, b, levels, benchSizes().perChat); err != nil {
			b.Fatal(err)
		}
	}
	rep.took = time.Since(started)
	var out strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&out, format, a...) }
	p("# chatprep bench: the store's size\n\n")
	p("Run %s, commit `%s`, %s, %d cores (%s), load average before the run: %s. `make bench-scale` took %s.\n\n",
		rep.at.Format("2006-01-02 15:04 UTC"), cmpOr(rep.commit, "unknown")+map[bool]string{true: " (with uncommitted changes)"}[rep.dirty],
		runtime.Version(), runtime.NumCPU(), rep.cpuModel, rep.loadavg, rep.took.Round(time.Second))
	scaleMarkdown(p, "Cost by the number of stored messages", rs)
	fmt.Println()
	fmt.Println(out.String())
	if *flagResults != "" && len(rs) == len(levels) && !*flagQuick {
		if err := writeResult(*flagResults, e.root, "SCALE.md", fmt.Sprintf("scale-%s-%s.md", rep.at.Format("2006-01-02"), cmpOr(rep.commit, "nocommit")), out.String()); err != nil {
			b.Fatal(err)
		}
	}
	last := rs[len(rs)-1]
	b.ReportMetric(last.importRate(), "import-msg/s")
	b.ReportMetric(last.run.eventsPerSec(), "events/s")
}

// writeResult writes text to dir/latest and dir/dated.
func writeResult(dir, root, latest, dated, text string) error {
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{latest, dated} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("written to %s and %s\n", filepath.Join(dir, latest), filepath.Join(dir, dated))
	return nil
}
