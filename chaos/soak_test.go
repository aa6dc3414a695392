package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSoak runs two workers at a steady rate against the real Weaviate,
// samples each worker's goroutines and live heap (/debug/vars), resident
// memory (VmRSS) and open TCP connections at a fixed interval, prints the
// samples, and checks they stay flat: the last at most 1.5 times the second
// (the first is taken while the worker warms up), with a little room for
// small counts. The live heap (what the last collection found reachable) is
// the leak signal; RSS follows it at up to 1+GOGC/100 times, with the worker's
// GOGC of 400 (app.TuneGC), so from one sample to the next it moves with
// when collections happen: its room is five times the live heap's (and it is
// checked only without the race detector). Then the usual accounting. The long form (make soak;
// -chaos.soak) runs -chaos.soak-for (10 minutes) sampled once a minute;
// the short form (make test) 24 seconds sampled every 6.
func TestSoak(t *testing.T) {
	parallel(t)
	length, every := 24*time.Second, 6*time.Second
	if *soak {
		length, every = *soakFor, time.Minute
	}
	const rate, chats = 25.0, 50
	perChat := int(rate*length.Seconds()) / chats
	sc := scenario{name: fmt.Sprintf("soak %v", length), workers: 2, chats: chats, perChat: perChat, poisonEvery: 100, rate: rate}
	var samples []sample
	sc.fault = func(ctx context.Context, r *run) string {
		ws := r.fleet.running()
		take := func(minute int) {
			for _, w := range ws {
				s, err := takeSample(w, minute)
				if err != nil {
					r.t.Errorf("sample %s: %v", w.name, err)
					continue
				}
				samples = append(samples, s)
			}
		}
		take(0)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for minute := 1; ; minute++ {
			select {
			case <-ctx.Done():
				return ""
			case <-tick.C:
			}
			take(minute)
			if !r.send.sentAll().IsZero() {
				return fmt.Sprintf("%d samples per worker", minute+1)
			}
		}
	}
	tl := runScenario(t, sc)
	t.Logf("soak samples, one every %v (workers %s):\n%s", every, raceNote(), formatSamples(samples))
	t.Logf("soak accounting:\n%s", formatTable([]*tally{tl}))

	byWorker := map[string][]sample{}
	for _, s := range samples {
		byWorker[s.worker] = append(byWorker[s.worker], s)
	}
	for w, ss := range byWorker {
		if len(ss) < 3 {
			t.Errorf("%s: %d samples, want at least 3", w, len(ss))
			continue
		}
		second, last := ss[1], ss[len(ss)-1]
		for _, m := range []struct {
			name         string
			second, last float64
			slack        float64
		}{
			{"goroutines", float64(second.goroutines), float64(last.goroutines), 20},
			{"live heap (KiB)", float64(second.heapLiveKiB), float64(last.heapLiveKiB), 8 * 1024},
			{"RSS (KiB)", float64(second.rssKiB), float64(last.rssKiB), 5 * 8 * 1024},
			{"TCP connections", float64(second.conns), float64(last.conns), 8},
		} {
			if m.name == "RSS (KiB)" && raceBuilt() {
				// The race detector's shadow memory grows with the
				// addresses the heap has touched, leak or not: RSS is
				// checked in the long form, whose workers run without it.
				continue
			}
			if m.last > max(1.5*m.second, m.second+m.slack) {
				t.Errorf("%s: %s grew from %.0f (sample 1) to %.0f (sample %d, every %v)", w, m.name, m.second, m.last, last.minute, every)
			}
		}
	}
}

// sample is one worker's resources at one minute of the soak.
type sample struct {
	worker      string
	minute      int // the sample's number: minutes in the long form
	goroutines  int
	heapLiveKiB int
	rssKiB      int
	conns       int // TCP sockets in ESTABLISHED state
	fds         int
}

func takeSample(w *worker, minute int) (sample, error) {
	s := sample{worker: w.name, minute: minute}
	v, err := debugVars(w.health)
	if err != nil {
		return s, err
	}
	g, _ := v["goroutines"].(float64)
	s.goroutines = int(g)
	live, _ := v["heap_live"].(float64)
	s.heapLiveKiB = int(live) >> 10
	rss, _, err := w.proc.Memory()
	if err != nil {
		return s, err
	}
	s.rssKiB = int(rss >> 10)
	inodes, fds, err := socketInodes(w.proc.Pid())
	if err != nil {
		return s, err
	}
	s.fds = fds
	s.conns = len(tcpSockets(inodes, "01"))
	return s, nil
}

func formatSamples(ss []sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-6s %6s %10s %14s %9s %11s %4s\n", "worker", "sample", "goroutines", "live heap MiB", "RSS MiB", "TCP conns", "fds")
	for _, s := range ss {
		fmt.Fprintf(&b, "  %-6s %6d %10d %14.1f %9.1f %11d %4d\n", s.worker, s.minute, s.goroutines, float64(s.heapLiveKiB)/1024, float64(s.rssKiB)/1024, s.conns, s.fds)
	}
	return b.String()
}
