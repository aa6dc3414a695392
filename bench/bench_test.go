package bench

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/store"
)

var (
	flagResults = flag.String("results", "", "also write the table to DIR/LATEST.md and DIR/YYYY-MM-DD-<commit>.md")
	flagProfile = flag.String("profile", "", "run rows 1, 4, 6, 7 and 9's workers with CPU and allocation profiles written to DIR (the Node peer: node --cpu-prof; row 9 also Weaviate's own; then the CPU figures include the profiler)")
	flagLogs    = flag.String("logs", "", "keep each worker's whole log in DIR/<row>.log")
	flagQuick   = flag.Bool("quick", false, "a tenth of the events, for trying the harness out; not for results")
	flagCompare = flag.String("compare", "", "also run row 1's worker as built at this commit (say, the one before a change), beside v3 and v2")
)

// Sizes of the rows (the issues'; -quick divides them).
type sizes struct {
	chats, perChat  int // rows 1 and 4: 2,000 events over 100 chats (issue 13's workload)
	sweepLevels     []int
	sweepSlice      time.Duration
	kindSlice       time.Duration // row 1: each call kind alone
	kindLoops       int
	seedPerDelay    map[time.Duration]int // row 2: events per design per latency
	lengthSlice     time.Duration         // row 3
	lengthLoops     int
	scalingPerChat  int // row 5: events per chat per setting
	scalingSettings []scaling
	latencyBurst    int           // row 9: the burst that measures the throughput on a default Weaviate
	latencyIdle     time.Duration // row 9: each open-loop run at 20 events/s
	latencyLoad     time.Duration // row 9: each open-loop run at 60% of the throughput
}

type scaling struct {
	pool, inFlight, procs int // procs 0: all cores
}

func benchSizes() sizes {
	s := sizes{
		chats: benchChats, perChat: 20,
		sweepLevels: []int{4, 8, 16, 32, 64, 128}, sweepSlice: 4 * time.Second,
		kindSlice: 1500 * time.Millisecond, kindLoops: 32,
		seedPerDelay: map[time.Duration]int{20 * time.Millisecond: 30, 100 * time.Millisecond: 12},
		lengthSlice:  3 * time.Second, lengthLoops: 32,
		scalingPerChat: 15,
		// GOMAXPROCS 1 stands in for a task of at most one vCPU.
		scalingSettings: []scaling{{16, 64, 1}, {64, 256, 1}, {64, 256, 2}, {128, 512, 2}},
		// The loaded runs last two lifetimes of a default memtable (45 s), so
		// that they see it grow and flush.
		latencyBurst: 1500, latencyIdle: 30 * time.Second, latencyLoad: 90 * time.Second,
	}
	if *flagQuick {
		s.chats, s.perChat = 20, 10
		s.sweepLevels, s.sweepSlice, s.kindSlice = []int{8, 32}, time.Second, 500*time.Millisecond
		s.seedPerDelay = map[time.Duration]int{20 * time.Millisecond: 5, 100 * time.Millisecond: 3}
		s.lengthSlice, s.scalingPerChat = time.Second, 3
		s.scalingSettings = s.scalingSettings[:2]
		s.latencyBurst, s.latencyIdle, s.latencyLoad = 300, 6*time.Second, 10*time.Second
	}
	return s
}

// BenchmarkChatprep runs every row of the bench on the embedded stack and
// prints one table. Run it once (-benchtime 1x): each row is minutes of
// work, not a loop.
func BenchmarkChatprep(b *testing.B) {
	started := time.Now()
	e := newEnv(b)
	sz := benchSizes()
	rep := e.report
	rep.start(sz)
	ctx := context.Background()
	events := workload.Events("run", sz.chats, sz.perChat, workload.EventBase) // rows 1 and 4

	b.Run("1_throughput", func(b *testing.B) {
		for range b.N {
			// The sweep and the call kinds on one fresh Weaviate; the limit
			// at the best level and the worker on two more, each seeded
			// alike and settled, on the same events.
			p := e.startPhase(b, seedChats(sz.chats))
			rep.seed, rep.settle = p.seed, p.settled
			sw := workload.Events("sweep", sz.chats, 800, workload.EventBase)
			var best limitResult
			var err error
			if rep.warm, rep.sweep, best, err = sweep(ctx, p, sw, sz.sweepLevels, sz.sweepSlice); err != nil {
				b.Fatal(err)
			}
			settle(ctx, p.stack.Weaviate.Pid()) // the sweep's writes flushed
			kinds := workload.Events("kind", sz.chats, 400, workload.EventBase.Add(time.Hour))
			if rep.kinds, err = perKind(ctx, p, kinds, sz.kindLoops, sz.kindSlice); err != nil {
				b.Fatal(err)
			}
			p.stop()

			p = e.startPhase(b, seedChats(sz.chats))
			r, err := closedLoop(ctx, p, events, best.concurrency, 0, workerMix)
			if err != nil {
				b.Fatal(err)
			}
			rep.limit = &r
			p.stop()

			p = e.startPhase(b, seedChats(sz.chats))
			wr := workerRun{name: "row1", bin: e.worker, args: []string{"run"}, events: events}
			if *flagProfile != "" {
				wr.bin, wr.args = e.benchWorker, profileArgs("row1", "weaviate")
			}
			w, err := p.run(ctx, wr)
			if err != nil {
				b.Fatal(err)
			}
			rep.row1 = &w
			p.stop()

			// chatprep v2 on the same events, on a Weaviate seeded alike:
			// what v3's context costs.
			if e.workerV2 != "" {
				// v2 searched the text property, which collections have
				// indexed only for a vectorizer since issue 22, and knew
				// no tenants (issue 18): its collection has none.
				p = e.startPhaseWith(b, phaseOptions{tenants: -1}, func(ctx context.Context, w *devstack.Weaviate, st *store.Store) error {
					if err := indexText(ctx, w.URL, st, false); err != nil {
						return err
					}
					return seed(ctx, st, sz.chats)
				})
				v2, err := p.run(ctx, workerRun{name: "row1-v2", bin: e.workerV2, args: []string{"run"}, events: events})
				if err != nil {
					b.Fatal(err)
				}
				rep.row1v2 = &v2
				p.stop()
			}
			if e.workerCmp != "" {
				p = e.startPhase(b, seedChats(sz.chats))
				cmp, err := p.run(ctx, workerRun{name: "row1-compare", bin: e.workerCmp, args: []string{"run"}, events: events})
				if err != nil {
					b.Fatal(err)
				}
				rep.row1cmp = &cmp
				p.stop()
			}
			b.ReportMetric(w.eventsPerSec(), "events/s")
			b.ReportMetric(w.eventsPerSec()/r.eventsPerSec(), "worker/limit")
			b.ReportMetric(us(w.perEvent(w.workerCPU)), "cpu-µs/event")
		}
	})

	b.Run("2_seed_table", func(b *testing.B) {
		for range b.N {
			p := e.startPhase(b, seedChats(sz.chats))
			rows, err := seedTable(ctx, p, sz.seedPerDelay)
			if err != nil {
				b.Fatal(err)
			}
			rep.seedRows = rows
			p.stop()
		}
	})

	b.Run("3_chat_length", func(b *testing.B) {
		for range b.N {
			p := e.startPhase(b, seedLengths)
			rs, err := lengths(ctx, p, sz.lengthLoops, sz.lengthSlice)
			if err != nil {
				b.Fatal(err)
			}
			rep.lengths = rs
			p.stop()
		}
	})

	b.Run("4_overhead", func(b *testing.B) {
		for range b.N {
			// No Weaviate: the worker's store is the in-memory stand-in.
			p := &phase{e: e, stack: &devstack.Stack{AWS: e.aws, Weaviate: &devstack.Weaviate{}}}
			wr := workerRun{name: "row4", bin: e.benchWorker, args: []string{"-store", "memory"}, events: events,
				extra: map[string]string{"WEAVIATE_URL": "http://127.0.0.1:9", "WEAVIATE_GRPC_ADDR": "off"}}
			if *flagProfile != "" {
				wr.args = profileArgs("row4", "memory")
			}
			r, err := p.run(ctx, wr)
			if err != nil {
				b.Fatal(err)
			}
			rep.overhead = &r
			b.ReportMetric(r.eventsPerSec(), "events/s")
			b.ReportMetric(us(r.perEvent(r.workerCPU)), "cpu-µs/event")
		}
	})

	b.Run("5_scaling", func(b *testing.B) {
		for range b.N {
			p := e.startPhase(b, seedChats(sz.chats))
			start := workload.EventBase.Add(2 * time.Hour)
			for i, s := range sz.scalingSettings {
				name := fmt.Sprintf("row5-%d", i)
				extra := map[string]string{"POOL_SIZE": strconv.Itoa(s.pool), "MAX_IN_FLIGHT": strconv.Itoa(s.inFlight)}
				if s.procs > 0 {
					extra["GOMAXPROCS"] = strconv.Itoa(s.procs)
				}
				evs := workload.Events(name, sz.chats, sz.scalingPerChat, start)
				start = start.Add(time.Duration(sz.scalingPerChat) * time.Second)
				r, err := p.run(ctx, workerRun{name: name, bin: e.worker, args: []string{"run"}, extra: extra, events: evs})
				if err != nil {
					b.Fatal(err)
				}
				rep.scaling = append(rep.scaling, scalingResult{scaling: s, runResult: r})
			}
			p.stop()
		}
	})

	b.Run("7_context", func(b *testing.B) {
		for range b.N {
			r, err := contextRow(ctx, e, b, *flagQuick)
			if err != nil {
				b.Fatal(err)
			}
			rep.context = r
			for _, c := range r.configs {
				if c.budget == 2000 {
					b.ReportMetric(c.all.Recall(), "recall@2000")
				}
			}
		}
	})

	b.Run("6_tracing", func(b *testing.B) {
		for range b.N {
			r, err := tracingRow(ctx, e, sz.chats)
			if err != nil {
				b.Fatal(err)
			}
			rep.tracing = r
			b.ReportMetric(r.ratio(), "cpu-export/off")
		}
	})

	b.Run("8_node_peer", func(b *testing.B) {
		for range b.N {
			r, err := peerRow(ctx, b, e, events, sz.chats)
			if err != nil {
				b.Fatal(err)
			}
			rep.peer = r
			b.ReportMetric(r.eventsRatio(), "events/s-over-peer")
			b.ReportMetric(r.cpuRatio(), "cpu-of-peer")
			b.ReportMetric(r.weaviateRatio(), "weaviate-cpu-of-peer")
			b.ReportMetric(r.exportRatio(), "cpu-export/off")
		}
	})

	b.Run("9_latency", func(b *testing.B) {
		for range b.N {
			r, err := latencyRow(ctx, b, e, sz)
			if err != nil {
				b.Fatal(err)
			}
			rep.latency = r
			b.ReportMetric(ms(r.idle[1].p(50)), "e2e-p50-ms@20/s")
			b.ReportMetric(ms(r.loaded[1].p(99)), "e2e-p99-ms@60%")
		}
	})

	b.Run("10_scale", func(b *testing.B) {
		for range b.N {
			levels := benchScaleLevels
			if *flagQuick {
				levels = []int{5_000}
			}
			rs, err := scaleRow(ctx, e, b, levels, sz.perChat)
			if err != nil {
				b.Fatal(err)
			}
			rep.scale = rs
			b.ReportMetric(rs[len(rs)-1].importRate(), "import-msg/s")
		}
	})

	rep.took = time.Since(started)
	table := rep.markdown()
	fmt.Println()
	fmt.Println(table)
	if *flagResults != "" && rep.complete() {
		if err := rep.write(*flagResults, e.root, table); err != nil {
			b.Fatal(err)
		}
	}
}

func profileArgs(row, storeKind string) []string {
	return []string{"-store", storeKind,
		"-cpuprofile", fmt.Sprintf("%s/%s.cpu.pprof", *flagProfile, row),
		"-memprofile", fmt.Sprintf("%s/%s.allocs.pprof", *flagProfile, row)}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
