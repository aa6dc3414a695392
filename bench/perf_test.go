package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where Weaviate's CPU goes, from Linux perf when it is on the PATH (and the
// bench may profile other processes): row 8 records Weaviate's stacks
// during the first round's runs, so the report can say what bounds
// Weaviate's cost per event with the profile that shows it.

// weaviateFrames are the frames whose share (with what they call) the
// report shows, by a part of their symbol.
var weaviateFrames = []struct{ label, symbol string }{
	{"searches (all kinds)", "db.(*Shard).ObjectSearch"},
	{"BM25 searches", "inverted.(*BM25Searcher).BM25F"},
	{"… of which the average property length (walks the whole active memtable)", "lsmkv.(*Bucket).GetAveragePropertyLength"},
	{"filtered, sorted searches (history)", "sorter.(*lsmSorter).SortDocIDs"},
	{"writes", "db.(*Shard).putObjectLSM"},
	{"garbage collection (background)", "runtime.gcBgMarkWorker"},
}

// weaviateProfile is what perf recorded of Weaviate during one run.
type weaviateProfile struct {
	shares map[string]float64 // symbol → % of the samples under it
	err    error              // why there is none
}

// perfObserver returns a workerRun.observe that records Weaviate with perf
// into file, and reads the shares into *into once the run's events are
// finished.
func perfObserver(file string, into *weaviateProfile) func(pid int) func() {
	return func(pid int) func() {
		perf, err := exec.LookPath("perf")
		if err != nil || pid <= 0 {
			into.err = fmt.Errorf("no perf on the PATH")
			return func() {}
		}
		rec := exec.Command(perf, "record", "-q", "-F", "499", "-g", "-o", file, "-p", strconv.Itoa(pid))
		var stderr bytes.Buffer
		rec.Stderr = &stderr
		if err := rec.Start(); err != nil {
			into.err = fmt.Errorf("perf record: %w", err)
			return func() {}
		}
		return func() {
			_ = rec.Process.Signal(syscall.SIGINT) // perf writes its file and exits
			waited := make(chan error, 1)
			go func() { waited <- rec.Wait() }()
			select {
			case <-waited:
			case <-time.After(30 * time.Second):
				_ = rec.Process.Kill()
				<-waited
			}
			*into = readPerf(perf, file)
			if into.err != nil && stderr.Len() > 0 {
				into.err = fmt.Errorf("%w (%s)", into.err, strings.TrimSpace(stderr.String()))
			}
		}
	}
}

// readPerf reads the shares of weaviateFrames from a perf recording.
func readPerf(perf, file string) weaviateProfile {
	out, err := exec.Command(perf, "report", "-i", file, "--children", "--sort", "symbol", "--stdio", "-g", "none").Output()
	if err != nil {
		return weaviateProfile{err: fmt.Errorf("perf report: %w", err)}
	}
	p := weaviateProfile{shares: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// "    76.10%    11.50%  [.] github.com/…/lsmkv.(*Memtable).GetPropLengths   -   -"
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		share, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		for _, w := range weaviateFrames {
			if strings.HasSuffix(f[3], w.symbol) && share > p.shares[w.symbol] {
				p.shares[w.symbol] = share
			}
		}
	}
	if len(p.shares) == 0 {
		p.err = fmt.Errorf("perf recorded none of Weaviate's frames (%d bytes of report)", len(out))
	}
	return p
}

// perfFile is where a run's recording goes: the -profile directory, or the
// bench's temporary one.
func perfFile(tmp, name string) string {
	dir := tmp
	if *flagProfile != "" {
		dir = *flagProfile
	}
	return filepath.Join(dir, name+".weaviate.perf.data")
}

// markdownProfiles writes the shares of Weaviate's CPU of the runs whose
// profiles is set, one column each.
func markdownProfiles(pr func(format string, a ...any), names []string, profiles []*weaviateProfile) {
	var cols []int
	for i, p := range profiles {
		if p != nil && p.err == nil {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 {
		for i, p := range profiles {
			if p != nil {
				pr("No profile of Weaviate (%s): %v.\n\n", names[i], p.err)
				return
			}
		}
		return
	}
	pr("Where Weaviate's CPU went in round 1 (Linux perf, 499 Hz, its stacks; a frame's share includes what it calls):\n\n| frame |")
	for _, i := range cols {
		pr(" %s |", names[i])
	}
	pr("\n| --- |%s\n", strings.Repeat(" ---: |", len(cols)))
	for _, w := range weaviateFrames {
		pr("| %s |", w.label)
		for _, i := range cols {
			pr(" %.0f%% |", profiles[i].shares[w.symbol])
		}
		pr("\n")
	}
	pr("\n")
}
