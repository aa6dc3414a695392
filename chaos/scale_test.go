package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack/stacktest"
)

// TestChaosScaleOut runs 1, 2 and 4 worker processes on one FIFO queue
// (the short form: 2) with a store that is not the bottleneck: the
// benchmark's worker (bench/cmd/benchworker) with its in-memory stand-in
// for Weaviate, so what is measured is SQS handling, the pool and
// publishing. Each run: the workers start on an empty queue, then a burst of
// events is sent as fast as the test can; events/s is user and assistant
// messages over the time from the first send to the last result. The
// accounting: every user message has exactly one result, in per-chat
// order across the workers, nothing went to the dead-letter queue, the
// input queue is empty. (Stored messages live in each worker's memory and
// cannot be counted from outside; a result is published only after its
// message was stored there.)
//
// The machine has two cores shared by the workers, kumo (in this test
// process) and the test's senders and readers: more workers add
// concurrency, not CPU, so the figures show how far one queue spreads over
// processes here, not ECS's scaling.
func TestChaosScaleOut(t *testing.T) {
	parallel(t)
	bin, err := benchWorker()
	if err != nil {
		t.Fatal(err)
	}
	counts, chats, perChat := []int{2}, 40, 20
	if *full {
		counts, chats, perChat = []int{1, 2, 4}, 100, 40
	}
	var lines []string
	for _, n := range counts {
		t.Run(fmt.Sprintf("%d workers", n), func(t *testing.T) {
			rate, tl := scaleRun(t, bin, n, chats, perChat)
			lines = append(lines, fmt.Sprintf("%d worker(s): %5.0f events/s  (%d events, %d/%d results, %d lost, %d duplicates, order checked)",
				n, rate, tl.events, tl.results, tl.users, tl.lost, tl.dups))
		})
	}
	t.Logf("scale-out on one FIFO queue, in-memory store (bench worker, built without -race):\n  %s", strings.Join(lines, "\n  "))
}

func scaleRun(t *testing.T, bin string, n, chats, perChat int) (float64, *tally) {
	env := stacktest.New(t)
	r := &run{t: t, sc: scenario{name: fmt.Sprintf("scale-out %d", n), workers: n}, env: env, stack: env.Stack, api: unfaultedSQS(env)}
	r.load = makeLoad(env.ChatID, chats, perChat, 0, uint64(n))
	r.fleet = newFleet(t, bin, []string{"-store", "memory"}, append(env.Environ(),
		"LOG_LEVEL=info", "VISIBILITY_TIMEOUT="+visibilityTimeout, "SHUTDOWN_TIMEOUT="+shutdownTimeout().String(), "METRICS_FLUSH_INTERVAL=5s"))
	r.fleet.startN(n)
	r.coll = startCollector(r.api, env.ResponseURL, 4)
	t.Cleanup(r.coll.stop)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	if err := sendParallel(ctx, r, 4); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	if !waitFor(ctx, 5*time.Minute, 100*time.Millisecond, func() bool { return r.coll.have(r.load) == r.load.users }) {
		t.Errorf("%d of %d results", r.coll.have(r.load), r.load.users)
	}
	took := r.coll.lastNew().Sub(start)
	valid := len(r.load.valid)
	rate := float64(valid) / took.Seconds()
	t.Logf("%d workers: %d events in %v (sent in %v): %.0f events/s", n, valid, took.Round(time.Millisecond), sent.Round(time.Millisecond), rate)

	drainedAt := time.Now()
	if !waitFor(ctx, time.Minute, 200*time.Millisecond, func() bool {
		d, err := stacktest.Depth(ctx, r.api, env.InputURL)
		return err == nil && d == 0
	}) {
		t.Error("the input queue did not empty")
	}
	if err := r.fleet.stopAll(stopGrace()); err != nil {
		t.Errorf("stopping the workers: %v", err)
	}
	if !waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		d, err := stacktest.Depth(ctx, r.api, env.ResponseURL)
		return err == nil && d == 0
	}) {
		t.Error("the response queue did not empty")
	}
	r.coll.stop()
	tl := r.account(ctx, true, time.Since(drainedAt), false)
	return rate, tl
}

// sendParallel sends the load with up to n senders, each owning a share of
// the chats (so each chat's events go out in order), as fast as they can.
func sendParallel(ctx context.Context, r *run, n int) error {
	shares := make([][]*ev, n)
	owner := map[string]int{}
	for _, e := range r.load.events {
		i, ok := owner[e.chat]
		if !ok {
			i = len(owner) % n
			owner[e.chat] = i
		}
		shares[i] = append(shares[i], e)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	r.send = &sender{api: r.api, url: r.env.InputURL, fifo: !r.sc.standard}
	for _, share := range shares {
		wg.Go(func() {
			for i := 0; i < len(share); i += 10 {
				if err := r.send.batch(ctx, share[i:min(i+10, len(share))]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
