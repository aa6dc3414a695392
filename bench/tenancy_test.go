package bench

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/store"
)

var (
	flagTenancy     = flag.String("tenancy", "-1,16,64,256", "BenchmarkTenancy: the messages collection's tenants to compare (-1: none, a collection without multi-tenancy)")
	flagTenancyRate = flag.Float64("tenancy.rate", 100, "BenchmarkTenancy: events/s")
	flagTenancySpan = flag.Duration("tenancy.span", 60*time.Second, "BenchmarkTenancy: how long each variant runs")
	flagTenancyStep = flag.Duration("tenancy.window", 10*time.Second, "BenchmarkTenancy: the window of each line")
	flagTenancyTune = flag.Bool("tenancy.tuned", false, "BenchmarkTenancy: on the devstack's tuned memtables instead of Weaviate's own settings")
)

// BenchmarkTenancy is the measurement behind the store's tenants (see the
// store's package doc, Tenants): for each tenant count, on a fresh Weaviate
// with its own memtable settings seeded with latencyChats chats, the
// worker's Weaviate calls for each event (workerCalls, at once), open loop
// at -tenancy.rate for -tenancy.span, through the store. It prints, per
// 10 s (-tenancy.window), the latency of an event's calls and of its relevance search, and
// Weaviate's CPU per event; with -profile DIR, Weaviate's CPU profile of
// 30 s from the middle of each run (DIR/tenancy-N.cpu.pprof). Not part of
// `make bench`:
//
//	go test -run '^$' -bench Tenancy -benchtime 1x ./bench/ [-args -tenancy -1,64 -tenancy.rate 100 -tenancy.tuned -profile DIR]
func BenchmarkTenancy(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for v := range strings.SplitSeq(*flagTenancy, ",") {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("tenants="+v, func(b *testing.B) {
			opts := devstack.WeaviateOptions{Untuned: !*flagTenancyTune}
			var pprofURL string
			if *flagProfile != "" {
				addr, err := freeAddr()
				if err != nil {
					b.Fatal(err)
				}
				_, port, _ := strings.Cut(addr, ":")
				opts.Env = []string{"GO_PROFILING_DISABLE=false", "GO_PROFILING_PORT=" + port}
				pprofURL = "http://" + addr + "/debug/pprof/profile"
			}
			p := e.startPhaseWith(b, phaseOptions{weaviate: opts, tenants: n}, func(ctx context.Context, _ *devstack.Weaviate, st *store.Store) error {
				return seed(ctx, st, latencyChats)
			})
			defer p.stop()
			perChat := int(*flagTenancyRate*flagTenancySpan.Seconds())/latencyChats + 1
			evs := workload.Events("ten", latencyChats, perChat, workload.EventBase.Add(time.Hour))
			var profiled func() error
			if pprofURL != "" {
				profiled = profileURL(ctx, pprofURL, 30*time.Second, filepath.Join(*flagProfile, fmt.Sprintf("tenancy-%d.cpu.pprof", n)), *flagTenancySpan/2-15*time.Second)
			}
			windows, err := openLoopCalls(ctx, p, evs, *flagTenancyRate, *flagTenancySpan, *flagTenancyStep)
			if err == nil && profiled != nil {
				err = profiled()
			}
			if err != nil {
				b.Fatal(err)
			}
			var files int
			_ = filepath.WalkDir(p.stack.Weaviate.DataDir(), func(string, fs.DirEntry, error) error { files++; return nil })
			settings := "Weaviate's own memtable settings"
			if *flagTenancyTune {
				settings = "the devstack's tuned memtables"
			}
			fmt.Printf("\ntenants %d, %s events/s open loop, %s; %d files in its data directory at the end\n\n", n, num(*flagTenancyRate), settings, files)
			fmt.Printf("| from | events | an event's calls p50 / p95 / p99 | relevance p50 / p99 | Weaviate CPU / event |\n| ---: | ---: | ---: | ---: | ---: |\n")
			var all callWindow
			for i, w := range windows {
				w.print(dur(time.Duration(i) * *flagTenancyStep))
				all.lat, all.rel, all.cpu = append(all.lat, w.lat...), append(all.rel, w.rel...), all.cpu+w.cpu
			}
			all.print("all")
		})
	}
}

// callWindow is what openLoopCalls measured over the events sent in one
// window.
type callWindow struct {
	lat, rel []time.Duration
	cpu      time.Duration // Weaviate's
}

func (w callWindow) print(label string) {
	fmt.Printf("| %s | %d | %s / %s / %s | %s / %s | %s |\n", label, len(w.lat),
		dur(percentile(w.lat, 50)), dur(percentile(w.lat, 95)), dur(percentile(w.lat, 99)),
		dur(percentile(w.rel, 50)), dur(percentile(w.rel, 99)), dur(w.cpu/time.Duration(max(1, len(w.lat)))))
}

// openLoopCalls makes the worker's Weaviate calls for each event, at
// once, the i-th event at start + i/rate on its own goroutine, for span, and
// returns them by window of their send time.
func openLoopCalls(ctx context.Context, p *phase, evs []workload.Event, rate float64, span, window time.Duration) ([]callWindow, error) {
	windows := make([]callWindow, int(span/window))
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	every := time.Duration(float64(time.Second) / rate)
	pid := p.stack.Weaviate.Pid()
	start, cpuAt, current := time.Now(), procCPU(pid), 0
	for i, ev := range evs {
		due := start.Add(time.Duration(i) * every)
		wi := int(due.Sub(start) / window)
		if wi >= len(windows) {
			break
		}
		time.Sleep(time.Until(due))
		if wi != current {
			c := procCPU(pid)
			windows[current].cpu, cpuAt, current = c-cpuAt, c, wi
		}
		wg.Go(func() {
			t0 := time.Now()
			errs := make([]error, len(workerCalls))
			var rel time.Duration
			var calls sync.WaitGroup
			for j, c := range workerCalls {
				calls.Go(func() {
					t := time.Now()
					errs[j] = c.do(ctx, p.store, ev.Event)
					if strings.HasPrefix(c.name, "relevance") {
						rel = time.Since(t)
					}
				})
			}
			calls.Wait()
			d := time.Since(t0)
			for _, err := range errs {
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("event %s: %w", ev.EventID, err) })
					return
				}
			}
			mu.Lock()
			windows[wi].lat = append(windows[wi].lat, d)
			windows[wi].rel = append(windows[wi].rel, rel)
			mu.Unlock()
		})
	}
	wg.Wait()
	windows[current].cpu = procCPU(pid) - cpuAt
	return windows, firstErr
}
