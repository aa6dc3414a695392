package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// The benchmarks run against the shared real server with a populated
// collection: benchChats chats of benchMessages messages each. Run them with
// e.g.
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/store/
//
// Besides ns/op they report ops/s (calls per second across all goroutines)
// and the latency of one call (mean, p50, p99), since ns/op of a parallel
// benchmark is wall time divided by calls, not a call's latency.
const (
	benchChats       = 200
	benchMessages    = 50
	benchParallelism = 16 // goroutines per core: 32 on 2 cores, like a loaded worker pool
)

var (
	benchOnce  sync.Once
	benchErr   error
	benchBase  = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	benchWords = makeWords(400, "")
	// putWords are BenchmarkPut's own words: the many objects it writes must
	// not lengthen the posting lists the relevance benchmarks search.
	putWords = makeWords(400, "p")
)

func makeWords(n int, prefix string) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	words := make([]string, n)
	for i := range words {
		b := make([]byte, 4+r.IntN(6))
		for j := range b {
			b[j] = letters[r.IntN(len(letters))]
		}
		words[i] = prefix + string(b)
	}
	return words
}

func benchText(r *rand.Rand, n int) string { return textOf(benchWords, r, n) }

func textOf(words []string, r *rand.Rand, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.IntN(len(words))]
	}
	return strings.Join(parts, " ")
}

func benchChat(i int) string { return fmt.Sprintf("bench-%d-chat-%d", os.Getpid(), i) }

// populate stores the benchmark data once per test binary, through the
// batched Put; every fourth chat is muted.
func populate(b *testing.B) {
	b.Helper()
	benchOnce.Do(func() {
		st, err := New(Config{URL: shared.URL, GRPCAddr: shared.GRPCAddr})
		if err != nil {
			benchErr = err
			return
		}
		defer st.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, benchChats)
		sem := make(chan struct{}, 64)
		for c := range benchChats {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r := rand.New(rand.NewPCG(uint64(c), 7))
				for m := range benchMessages {
					role := event.RoleUser
					if m%2 == 1 {
						role = event.RoleAssistant
					}
					if err := st.Put(ctx, event.Event{
						EventID: fmt.Sprintf("e-%d", m), ChatID: benchChat(c), Role: role,
						Text: benchText(r, 10+r.IntN(30)), SentAt: benchBase.Add(time.Duration(m) * time.Minute),
					}); err != nil {
						errs <- err
						return
					}
				}
				if c%4 == 0 {
					if err := st.SetMuted(ctx, event.Event{EventID: "mute", ChatID: benchChat(c), Type: event.TypeMute}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		benchErr = <-errs
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

// runParallel runs op from benchParallelism goroutines per core and reports
// throughput and per-call latency.
func runParallel(b *testing.B, op func(ctx context.Context, r *rand.Rand) error) {
	b.Helper()
	ctx := b.Context()
	var seed atomic.Uint64
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0, w0 := time.Now(), processCPU(b), pidCPU(shared.Pid())
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 99))
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := op(ctx, r); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	elapsed, cpu, wcpu := time.Since(start), processCPU(b)-cpu0, pidCPU(shared.Pid())-w0
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(ms(sum/time.Duration(len(all))), "ms/call")
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	// This process is the client alone (Weaviate is another process): its
	// CPU per call is what a worker spends on the call.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "client-cpu-µs/call")
	// Weaviate's CPU per call (the shared server: other tests' load counts
	// too when they run at the same time; benchmarks run alone).
	b.ReportMetric(float64(wcpu.Microseconds())/float64(len(all)), "weaviate-cpu-µs/call")
}

// pidCPU is a process's user and system CPU so far (0 if unknown).
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkContextCalls measures the v3 calls beside the history search:
// both roles' history in one search, the relevance search for 41 and for
// 60 candidates (v3 before and since the copies of issue 17's second
// round), their neighbours, and the references.
func BenchmarkContextCalls(b *testing.B) {
	populate(b)
	st := newStoreAt(b, shared, true, nil)
	before := benchBase.Add(time.Hour)
	for _, c := range []struct {
		name string
		op   func(ctx context.Context, r *rand.Rand) error
	}{
		{"history-one-role", func(ctx context.Context, r *rand.Rand) error {
			_, err := st.History(ctx, benchChat(r.IntN(benchChats)), event.RoleUser, before, 11)
			return err
		}},
		{"recent-both-roles", func(ctx context.Context, r *rand.Rand) error {
			_, err := st.Recent(ctx, benchChat(r.IntN(benchChats)), before, 21)
			return err
		}},
		{"relevant-26", func(ctx context.Context, r *rand.Rand) error {
			_, err := st.Relevant(ctx, benchChat(r.IntN(benchChats)), benchText(r, 12), before, 26)
			return err
		}},
		{"relevant-41", func(ctx context.Context, r *rand.Rand) error {
			_, err := st.Relevant(ctx, benchChat(r.IntN(benchChats)), benchText(r, 12), before, 41)
			return err
		}},
		{"relevant-60", func(ctx context.Context, r *rand.Rand) error {
			_, err := st.Relevant(ctx, benchChat(r.IntN(benchChats)), benchText(r, 12), before, 60)
			return err
		}},
		{"following-of-41", func(ctx context.Context, r *rand.Rand) error {
			chat := benchChat(r.IntN(benchChats))
			hits, err := st.Relevant(ctx, chat, benchText(r, 12), before, 41)
			if err == nil {
				_, err = st.Following(ctx, chat, hits, 1)
			}
			return err
		}},
		{"references", func(ctx context.Context, r *rand.Rand) error {
			_, err := st.References(ctx, benchChat(r.IntN(benchChats)), before, 10)
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) { runParallel(b, c.op) })
	}
}

// processCPU is the user and system CPU this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkHistory(b *testing.B) {
	populate(b)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := newStore(b, be.grpc)
			before := benchBase.Add(time.Hour)
			runParallel(b, func(ctx context.Context, r *rand.Rand) error {
				msgs, err := st.History(ctx, benchChat(r.IntN(benchChats)), event.RoleUser, before, 10)
				if err == nil && len(msgs) != 10 {
					err = fmt.Errorf("history: %d messages, want 10", len(msgs))
				}
				return err
			})
		})
	}
}

func BenchmarkRelevant(b *testing.B) {
	populate(b)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := newStore(b, be.grpc)
			before := benchBase.Add(time.Hour)
			runParallel(b, func(ctx context.Context, r *rand.Rand) error {
				_, err := st.Relevant(ctx, benchChat(r.IntN(benchChats)), benchText(r, 12), before, 5)
				return err
			})
		})
	}
}

// BenchmarkRelevantUnderWrites measures relevance search while new messages
// arrive at a steady benchWriteRate, as in a running worker. Weaviate's BM25
// cost grows with the objects in its active memtable (see the package doc),
// so this is the figure to compare with a live system, not BenchmarkRelevant
// alone.
func BenchmarkRelevantUnderWrites(b *testing.B) {
	const benchWriteRate = 300 // messages per second
	populate(b)
	st := newStore(b, true)
	before := benchBase.Add(time.Hour)
	ctx, cancel := context.WithCancel(b.Context())
	var writers sync.WaitGroup
	const nWriters = 10
	var seq atomic.Int64
	for w := range nWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			tick := time.NewTicker(time.Second * nWriters / benchWriteRate)
			defer tick.Stop()
			r := rand.New(rand.NewPCG(uint64(w), 5))
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				n := seq.Add(1)
				err := st.Put(ctx, event.Event{
					EventID: fmt.Sprintf("w-%d", n), ChatID: benchChat(r.IntN(benchChats)),
					Text: benchText(r, 20), SentAt: benchBase.Add(time.Duration(n) * time.Millisecond),
				})
				if err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	runParallel(b, func(ctx context.Context, r *rand.Rand) error {
		_, err := st.Relevant(ctx, benchChat(r.IntN(benchChats)), benchText(r, 12), before, 5)
		return err
	})
	cancel()
	writers.Wait()
}

// BenchmarkMuted: the muted lookup of a chat, and its parts. Every fourth
// chat is muted: its head says so, then its entries are searched (over
// gRPC or GraphQL); the others cost the head's GET alone.
func BenchmarkMuted(b *testing.B) {
	populate(b)
	st := newStore(b, true)
	entries := func(p path) func(ctx context.Context, c int) error {
		return func(ctx context.Context, c int) error {
			es, err := p.states(ctx, benchChat(c), stateEntries)
			if e, _ := newestEntry(es); err == nil && e.muted != (c%4 == 0) {
				err = fmt.Errorf("chat %d: muted %v", c, e.muted)
			}
			return err
		}
	}
	lookups := []struct {
		name string
		get  func(ctx context.Context, c int) error
	}{
		{"Muted", func(ctx context.Context, c int) error {
			muted, err := st.Muted(ctx, benchChat(c), benchBase)
			if err == nil && muted != (c%4 == 0) {
				err = fmt.Errorf("chat %d: muted %v", c, muted)
			}
			return err
		}},
		{"rest-head-by-id", func(ctx context.Context, c int) error {
			h, err := st.chatHead(ctx, benchChat(c))
			if err == nil && h.found != (c%4 == 0) {
				err = fmt.Errorf("chat %d: head found %v", c, h.found)
			}
			return err
		}},
		{"grpc-entries", entries(st.path())},
		{"graphql-entries", entries(graphQLPath{st})},
	}
	for _, l := range lookups {
		b.Run(l.name, func(b *testing.B) {
			runParallel(b, func(ctx context.Context, r *rand.Rand) error {
				return l.get(ctx, r.IntN(benchChats))
			})
		})
	}
}

func BenchmarkPut(b *testing.B) {
	var seq atomic.Int64
	for _, be := range backends {
		for _, mode := range []struct {
			name   string
			size   int
			linger time.Duration
		}{{"single", 1, 0}, {"batched", 0, 0}, {"batched-nolinger", 0, -1}} {
			b.Run(be.name+"-"+mode.name, func(b *testing.B) {
				st := newStoreAt(b, shared, be.grpc, func(c *Config) { c.BatchSize, c.BatchLinger = mode.size, mode.linger })
				chat := chatID(b)
				before := st.Stats()
				runParallel(b, func(ctx context.Context, r *rand.Rand) error {
					n := seq.Add(1)
					return st.Put(ctx, event.Event{
						EventID: fmt.Sprintf("p-%d", n), ChatID: fmt.Sprintf("%s-%d", chat, n%benchChats),
						Text: textOf(putWords, r, 20), SentAt: benchBase.Add(time.Duration(n) * time.Millisecond),
					})
				})
				after := st.Stats()
				if batches := after.Batches - before.Batches; batches > 0 {
					b.ReportMetric(float64(after.Objects-before.Objects)/float64(batches), "objects/batch")
				}
			})
		}
	}
}
