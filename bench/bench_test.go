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
)

var (
	flagResults = flag.String("results", "", "also write the table to DIR/LATEST.md and DIR/YYYY-MM-DD-<commit>.md")
	flagProfile = flag.String("profile", "", "run rows 1 and 3's worker with CPU and allocation profiles written to DIR (then the CPU figures include the profiler)")
	flagLogs    = flag.String("logs", "", "keep each worker's whole log in DIR/<row>.log")
	flagQuick   = flag.Bool("quick", false, "a tenth of the events, for trying the harness out; not for results")
)

// Sizes of the rows (the issue's; -quick divides them).
type sizes struct {
	chats, perChat  int // rows 1 and 3: 20,000 events over 500 chats
	limitSlice      time.Duration
	limitLevels     []int
	designPerChat   int // row 4: events per chat per design
	scalingPerChat  int // row 5: events per chat per setting
	scalingSettings []scaling
}

type scaling struct {
	pool, inFlight, procs int // procs 0: all cores
}

func benchSizes() sizes {
	s := sizes{
		chats: benchChats, perChat: 40,
		limitSlice:     3 * time.Second,
		limitLevels:    []int{16, 32, 64},
		designPerChat:  2,
		scalingPerChat: 3,
		// GOMAXPROCS 1 stands in for a task of at most one vCPU.
		scalingSettings: []scaling{
			{16, 64, 1}, {32, 128, 1}, {64, 256, 2}, {128, 512, 2},
		},
	}
	if *flagQuick {
		s.chats, s.perChat = 100, 20
		s.limitSlice = 2 * time.Second
		s.designPerChat, s.scalingPerChat = 1, 2
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
	evPrefix := "e2e" // rows 1 to 3 handle the same 20,000 events
	events := workload.Events(evPrefix, sz.chats, sz.perChat, workload.EventBase)

	b.Run("1_end_to_end", func(b *testing.B) {
		for range b.N {
			p := e.startPhase(b, sz.chats)
			rep.seed = p.seed
			wr := workerRun{name: "row1", bin: e.worker, args: []string{"run"}, events: events}
			if *flagProfile != "" {
				wr.bin, wr.args = e.benchWorker, profileArgs("row1", "weaviate")
			}
			r, err := p.run(ctx, wr)
			if err != nil {
				b.Fatal(err)
			}
			rep.row1 = &r
			p.stop()
			b.ReportMetric(r.eventsPerSec(), "events/s")
			b.ReportMetric(ms(percentile(r.e2e, 95)), "p95-ms")
			b.ReportMetric(us(r.perEvent(r.workerCPU)), "cpu-µs/event")
		}
	})

	b.Run("2_limit", func(b *testing.B) {
		for range b.N {
			// Find the best concurrency on one fresh Weaviate, then measure
			// it on another, seeded alike, so the sweep's writes cost the
			// measurement nothing.
			p := e.startPhase(b, sz.chats)
			sweep := workload.Events("sweep", sz.chats, sz.perChat, workload.EventBase)
			var best limitResult
			for _, c := range sz.limitLevels {
				r, err := closedLoop(ctx, p, sweep, c, sz.limitSlice)
				if err != nil {
					b.Fatal(err)
				}
				sweep = sweep[r.n:]
				rep.sweep = append(rep.sweep, r)
				if best.n == 0 || r.eventsPerSec() > best.eventsPerSec() {
					best = r
				}
			}
			p.stop()
			p = e.startPhase(b, sz.chats)
			r, err := closedLoop(ctx, p, events, best.concurrency, 0)
			if err != nil {
				b.Fatal(err)
			}
			rep.limit = &r
			p.stop()
			b.ReportMetric(r.eventsPerSec(), "events-worth/s")
			b.ReportMetric(float64(best.concurrency), "concurrency")
		}
	})

	b.Run("3_overhead", func(b *testing.B) {
		for range b.N {
			// No Weaviate: the worker's store is the in-memory stand-in.
			p := &phase{e: e, stack: &devstack.Stack{AWS: e.aws, Weaviate: &devstack.Weaviate{}}}
			wr := workerRun{name: "row3", bin: e.benchWorker, args: []string{"-store", "memory"}, events: events,
				extra: map[string]string{"WEAVIATE_URL": "http://127.0.0.1:9", "WEAVIATE_GRPC_ADDR": ""}}
			if *flagProfile != "" {
				wr.args = profileArgs("row3", "memory")
			}
			r, err := p.run(ctx, wr)
			if err != nil {
				b.Fatal(err)
			}
			rep.row3 = &r
			b.ReportMetric(r.eventsPerSec(), "events/s")
			b.ReportMetric(us(r.perEvent(r.workerCPU)), "cpu-µs/event")
		}
	})

	b.Run("4_designs", func(b *testing.B) {
		for range b.N {
			p := e.startPhase(b, sz.chats)
			// Each design its own events, later in time than the one before;
			// chatprep runs last, on the collection the others have grown.
			start := workload.EventBase
			next := func(prefix string) []workload.Event {
				evs := workload.Events(prefix, sz.chats, sz.designPerChat, start)
				start = start.Add(time.Duration(sz.designPerChat) * time.Second)
				return evs
			}
			serial, err := oneAtATime(ctx, "serial", p.store, next("d-serial"), serialDesign)
			if err != nil {
				b.Fatal(err)
			}
			exec5, err := oneAtATime(ctx, "executor5", p.store, next("d-exec5"), executorDesign)
			if err != nil {
				b.Fatal(err)
			}
			chat, err := chatprepDesign(ctx, p.store, next("d-chatprep"))
			if err != nil {
				b.Fatal(err)
			}
			rep.designs = []designResult{serial, exec5, chat}
			p.stop()
			b.ReportMetric(chat.eventsPerSec()/serial.eventsPerSec(), "chatprep/serial")
			b.ReportMetric(chat.eventsPerSec()/exec5.eventsPerSec(), "chatprep/executor5")
		}
	})

	b.Run("5_scaling", func(b *testing.B) {
		for range b.N {
			p := e.startPhase(b, sz.chats)
			start := workload.EventBase
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
