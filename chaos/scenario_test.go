package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/store/storetest"
	"github.com/chatprep/chatprep/internal/verify"
)

// Worker settings of every scenario, beyond the test's own queues. The
// visibility timeout is short so that messages a killed worker held come
// back within seconds (the heartbeat extends it while work goes on).
const visibilityTimeout = "5s"

// drainingShutdown is the workers' SHUTDOWN_TIMEOUT where a stop under
// load is the point: the rolling restart's, in every form, and every
// scenario's in the long forms. It is room to finish what a worker holds
// when it is stopped mid-load, a chat's messages one after another, on a
// machine whose two cores run other scenarios and tests too (the rolling
// restart checks that nothing is given back).
const drainingShutdown = 10 * time.Second

// shutdownTimeout is the workers' SHUTDOWN_TIMEOUT: drainingShutdown in the
// long forms, 2s in the short one (make test), whose workers are stopped
// only once the load is drained (the rolling restart sets its own). A
// stopped worker lets its long poll in flight end (SQS could deliver into
// it), and the consumer shortens its polls to end within the drain: 9s
// polls cost up to 9s per stop, 1s polls a second, and a scenario's final
// stop is not about that wait.
func shutdownTimeout() time.Duration {
	if *full || *soak {
		return drainingShutdown
	}
	return 2 * time.Second
}

// stopGrace bounds a SIGTERMed worker's exit: the drain (SHUTDOWN_TIMEOUT,
// at most drainingShutdown), the consumer's last flush and the publisher's
// and metrics' closing, with room to spare; ECS's stopTimeout plays this
// role.
func stopGrace() time.Duration { return drainingShutdown + 20*time.Second }

// scenario is one fault scenario: a load, a number of workers, and a fault
// that runs while the load is sent.
type scenario struct {
	name        string
	standard    bool // standard queues instead of FIFO
	workers     int
	chats       int
	perChat     int
	poisonEvery int // a poison event after every n valid ones; 0: none
	load        []loadOpt
	rate        float64 // events per second
	env         []string
	// weaviate is the server the workers use (through the scenario's
	// proxies) and apiKey its key; default the stack's, without a key.
	weaviate *devstack.Weaviate
	apiKey   string
	// startWeaviate, when set, starts the scenario's own server (and
	// returns its key) in place of weaviate: as the scenario starts, in its
	// lane. A nil server leaves weaviate as it is.
	startWeaviate func(t *testing.T) (*devstack.Weaviate, string)
	// before runs before the workers start (a fault for the whole run).
	before func(r *run)
	// fault runs while the load is sent, on the test goroutine; it returns
	// when the fault is over, with a note for the table.
	fault func(ctx context.Context, r *run) string
	// felt says why the fault had no visible effect ("" when it had one):
	// a fault the workers never noticed tests nothing.
	felt func(r *run, tl *tally) string
	// indexGapRepair: the scenario SIGKILLs Weaviate under writes, which can
	// lose index entries of writes Weaviate acknowledged (its own gap; the
	// README's Faults section, TestIndexGapAfterKills). When every message
	// is there by id but a chat's count falls short, the accounting runs
	// verify --repair, as an operator does after a crash, notes it in the
	// table, and the counts must then be exact.
	indexGapRepair bool
	// receivedOnce says every valid event must be received exactly once: a
	// worker stopped with SIGTERM strands and gives back nothing.
	receivedOnce bool
}

// run is one scenario's running state.
type run struct {
	t          *testing.T
	sc         scenario
	env        *stacktest.Env
	stack      *devstack.Stack
	aws        *devstack.AWSEndpoint // the workers' AWS endpoint, the scenario's own: its faults reach no one else
	api        *sqs.Client           // through the unfaulted endpoint
	load       *load
	fleet      *fleet
	send       *sender
	coll       *collector
	rest, grpc *devstack.TCPProxy // in front of Weaviate's REST and gRPC ports
	faulted    int64              // AWS calls the fault answered
	notes      []string
	// killedReceived sums the messages the SIGKILLed workers had received.
	killedReceived float64
}

// tally is one row of the table.
type tally struct {
	name, queues, note       string
	workers                  int
	events, users, poison    int
	results, lost, dups, dlq int
	unstored                 int // results published for messages not stored
	degraded                 int
	reorders                 int // order inversions of redelivered events (kumo's)
	nonchars                 int // messages given as context whose text holds U+FFFE or U+FFFF
	muted                    int // results of chats muted when their message came
	drain                    time.Duration
	failed, leasesLost       float64
	again                    int // valid user events received more than once
}

// waitSent waits until frac of the load was sent.
func (r *run) waitSent(ctx context.Context, frac float64) {
	want := int64(frac * float64(len(r.load.events)))
	if !waitFor(ctx, 5*time.Minute, 20*time.Millisecond, func() bool { return r.send.sent.Load() >= want }) {
		r.t.Fatalf("load stuck: %d of %d events sent", r.send.sent.Load(), len(r.load.events))
	}
}

// hold keeps a fault in place for d: the length of the outage is the
// scenario's input, not a wait for some state.
func hold(ctx context.Context, d time.Duration) { pause(ctx, d) }

// workerEnv is the environment of a scenario's workers: aws is their AWS
// endpoint, rest and grpc their way to Weaviate.
func workerEnv(env *stacktest.Env, aws *devstack.AWSEndpoint, rest, grpc *devstack.TCPProxy, extra ...string) []string {
	return append(env.Environ(), append([]string{
		"AWS_ENDPOINT_URL=" + aws.URL(),
		"LOG_LEVEL=info",
		"VISIBILITY_TIMEOUT=" + visibilityTimeout,
		"SHUTDOWN_TIMEOUT=" + shutdownTimeout().String(),
		"METRICS_FLUSH_INTERVAL=2s",
		"WEAVIATE_URL=" + rest.URL(),
		"WEAVIATE_GRPC_ADDR=" + grpc.Addr(),
	}, extra...)...)
}

// awsEndpoint is an AWS endpoint of the test's own to the stack's emulator
// (closed when the test ends): faults set on it reach only the workers
// pointed at it.
func awsEndpoint(t testing.TB, env *stacktest.Env) *devstack.AWSEndpoint {
	t.Helper()
	e, err := env.Stack.AWS.NewEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// unfaultedSQS is an SQS client of the test's own, on the endpoint that
// AWS faults never reach.
func unfaultedSQS(env *stacktest.Env) *sqs.Client {
	return sqs.NewFromConfig(env.AWS, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(env.Stack.AWS.UnfaultedURL())
		o.DisableMessageChecksumValidation = true // kumo answers deduplicated sends with the first MD5
	})
}

// weaviateProxies puts a TCP proxy in front of each of the stack's Weaviate
// ports.
func weaviateProxies(t testing.TB, w *devstack.Weaviate) (rest, grpc *devstack.TCPProxy) {
	t.Helper()
	var err error
	if rest, err = devstack.StartTCPProxy(strings.TrimPrefix(w.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rest.Close() })
	if grpc, err = devstack.StartTCPProxy(w.GRPCAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { grpc.Close() })
	return rest, grpc
}

// runScenario runs sc and checks the accounting; it returns the table row.
func runScenario(t *testing.T, sc scenario) *tally {
	var opts []stacktest.Option
	if sc.standard {
		opts = append(opts, stacktest.Standard())
	}
	phase := newPhases(t)
	env := stacktest.New(t, opts...)
	r := &run{t: t, sc: sc, env: env, stack: env.Stack, api: unfaultedSQS(env), aws: awsEndpoint(t, env)}
	if sc.startWeaviate != nil {
		if w, key := sc.startWeaviate(t); w != nil {
			sc.weaviate, sc.apiKey = w, key
		}
	}
	if sc.weaviate == nil {
		sc.weaviate = env.Stack.Weaviate
	}
	r.sc = sc
	r.rest, r.grpc = weaviateProxies(t, sc.weaviate)
	r.load = makeLoad(env.ChatID, sc.chats, sc.perChat, sc.poisonEvery, uint64(len(sc.name)), sc.load...)
	extra := sc.env
	if sc.apiKey != "" {
		extra = append([]string{"WEAVIATE_API_KEY=" + sc.apiKey}, extra...)
	}
	r.fleet = newFleet(t, workerBin, []string{"run"}, workerEnv(env, r.aws, r.rest, r.grpc, extra...))
	r.coll = startCollector(r.api, env.ResponseURL, 2)
	t.Cleanup(r.coll.stop)
	if sc.before != nil {
		sc.before(r)
	}
	phase("setup")
	r.fleet.startN(sc.workers)
	phase("workers ready")

	// The load's own length (the soak sends for 10 minutes) and room for
	// the fault and the drain.
	loadFor := time.Duration(float64(len(r.load.events)) / sc.rate * float64(time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), loadFor+10*time.Minute)
	defer cancel()
	r.send = &sender{api: r.api, url: env.InputURL, fifo: !sc.standard}
	sendErr := make(chan error, 1)
	go func() { sendErr <- r.send.run(ctx, r.load, sc.rate) }()
	if sc.fault != nil {
		if note := sc.fault(ctx, r); note != "" {
			r.notes = append(r.notes, note)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("sending the load: %v", err)
	}
	phase("load and fault")
	// Drained: every user message has its result and the input queue is
	// empty, counted from the end of the load or of the fault, whichever is
	// later.
	from := time.Now()
	if end := r.send.sentAll(); end.After(from) {
		from = end
	}
	var drainedAt time.Time
	drained := waitFor(ctx, drainTimeout(), 200*time.Millisecond, func() bool {
		if r.coll.have(r.load) < r.load.users {
			return false
		}
		n, err := stacktest.Depth(ctx, r.api, env.InputURL)
		if err == nil && n == 0 {
			drainedAt = time.Now()
			return true
		}
		return false
	})
	if !drained {
		n, _ := stacktest.Depth(ctx, r.api, env.InputURL)
		t.Errorf("not drained after %v: %d of %d results, %d messages in the input queue", drainTimeout(), r.coll.have(r.load), r.load.users, n)
	}

	phase("drain")
	// Stop the workers (they must drain and exit 0), then read what is left
	// on the response queue: a late duplicate would show now.
	if err := r.fleet.stopAll(stopGrace()); err != nil {
		t.Errorf("stopping the workers: %v", err)
	}
	if !waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		n, err := stacktest.Depth(ctx, r.api, env.ResponseURL)
		return err == nil && n == 0
	}) {
		t.Error("the response queue did not empty")
	}
	phase("stop")
	r.coll.stop()
	return r.account(ctx, drained, drainedAt.Sub(from), true)
}

// newPhases returns a function that logs how long the scenario's phase
// that ends at each call took (go test -v): where a scenario's time goes.
func newPhases(t *testing.T) func(name string) {
	last := time.Now()
	return func(name string) {
		now := time.Now()
		t.Logf("phase %s: %v", name, now.Sub(last).Round(100*time.Millisecond))
		last = now
	}
}

func drainTimeout() time.Duration {
	if *full {
		return 5 * time.Minute
	}
	return 2 * time.Minute
}

// account checks where every event ended up and returns the table row;
// with stored, also that Weaviate holds every message once.
func (r *run) account(ctx context.Context, drained bool, drain time.Duration, stored bool) *tally {
	t, l, c := r.t, r.load, r.coll
	queues := "FIFO"
	if r.sc.standard {
		queues = "standard"
	}
	tl := &tally{name: r.sc.name, queues: queues, workers: r.sc.workers, events: len(l.events), users: l.users,
		poison: len(l.poison), note: strings.Join(r.notes, "; ")}
	if drained {
		tl.drain = drain
	} else {
		tl.drain = -1
	}
	tl.failed = r.fleet.sum("consumer", "Failed")
	tl.leasesLost = r.fleet.sum("consumer", "LeasesLost")

	// Results: one per user message (at least one on standard queues).
	var lost, unexpected []string
	for _, e := range l.events {
		if e.kind != userMsg {
			continue
		}
		s, ok := c.results[e.id]
		if !ok {
			lost = append(lost, e.id)
			continue
		}
		tl.results++
		tl.dups += len(s.msgIDs) - 1
		if s.degraded {
			tl.degraded++
		}
		if s.chat != e.chat {
			t.Errorf("result of %s names chat %s, want %s", e.id, s.chat, e.chat)
		}
	}
	for id := range c.results {
		if e := l.valid[id]; e == nil || e.kind != userMsg {
			unexpected = append(unexpected, id)
		}
	}
	if len(unexpected) > 0 {
		t.Errorf("%d results for events that are not user messages: %v", len(unexpected), first(unexpected, 10))
	}
	if len(c.problems) > 0 {
		t.Errorf("%d problems with results: %v", len(c.problems), first(c.problems, 5))
	}
	if len(lost) > 0 {
		t.Errorf("%d user messages without a result: %v", len(lost), first(lost, 10))
	}
	if tl.dups > 0 && !r.sc.standard {
		t.Errorf("%d duplicate results on a FIFO response queue", tl.dups)
	}
	r.checkContents(tl)

	// Per-chat order on FIFO queues: results arrive in the order the
	// chat's events were sent. kumo breaks that order itself when several
	// messages of a group come back at once (released, or a killed worker's
	// leases running out): it puts them back in random order (map iteration
	// in its requeueExpiredMessages), where SQS keeps them in order. So an
	// inversion between events that were both delivered only once is the
	// worker's fault and fails the test; one involving a redelivered event
	// is counted in the table as kumo's.
	receives := receiveCounts(r.fleet.logs())
	for id := range l.valid {
		if receives[id] > 1 {
			tl.again++
		}
	}
	if r.sc.receivedOnce && tl.again > 0 {
		t.Errorf("%d events received more than once (stranded by a stop, or given back), want 0", tl.again)
	}
	if !r.sc.standard {
		lastSeq := map[string]*ev{} // chat → the latest event whose result arrived
		var broken []string
		for _, id := range c.arrivals {
			e := l.valid[id]
			if e == nil {
				continue
			}
			prev := lastSeq[e.chat]
			if prev == nil || prev.seq < e.seq {
				lastSeq[e.chat] = e
				continue
			}
			if receives[id] > 1 || receives[prev.id] > 1 {
				tl.reorders++
				continue
			}
			broken = append(broken, fmt.Sprintf("%s arrived after %s, both delivered once", id, prev.id))
		}
		if len(broken) > 0 {
			t.Errorf("per-chat order broken %d times: %v", len(broken), first(broken, 5))
		}
	}

	// Dead letters: exactly the poison events (at least once on standard).
	dead, err := drainQueue(ctx, r.api, r.env.DLQURL)
	if err != nil {
		t.Errorf("reading the dead-letter queue: %v", err)
	}
	inDLQ := map[string]int{}
	var strangers []string
	for _, m := range dead {
		body := aws.ToString(m.Body)
		if p := l.poison[body]; p != nil {
			inDLQ[body]++
			continue
		}
		strangers = append(strangers, body[:min(len(body), 120)])
	}
	tl.dlq = len(inDLQ)
	for body, n := range inDLQ {
		if n > 1 && !r.sc.standard {
			t.Errorf("poison event %s is %d times in the FIFO dead-letter queue", l.poison[body].id, n)
		}
	}
	if tl.dlq != len(l.poison) {
		t.Errorf("%d of %d poison events in the dead-letter queue", tl.dlq, len(l.poison))
	}
	if len(strangers) > 0 {
		t.Errorf("%d valid events in the dead-letter queue (lost): %v", len(strangers), first(strangers, 3))
	}

	// The input queue is empty.
	if n, err := stacktest.Depth(ctx, r.api, r.env.InputURL); err != nil || n != 0 {
		t.Errorf("input queue after the workers stopped: %d messages (%v)", n, err)
	}

	// Stored: every user and assistant message once, nothing else.
	var notStored, badChats []string
	if stored {
		var err error
		reader := storetest.Reader{URL: r.sc.weaviate.URL, Key: r.sc.apiKey}
		notStored, badChats, err = missing(ctx, reader, l)
		if err != nil {
			t.Errorf("reading Weaviate: %v", err)
		}
		if err == nil && len(notStored) == 0 && len(badChats) > 0 && r.sc.indexGapRepair {
			note := r.repairIndexGap(ctx)
			tl.note = strings.Join(append(r.notes, note), "; ")
			if notStored, badChats, err = missing(ctx, reader, l); err != nil {
				t.Errorf("reading Weaviate after the repair: %v", err)
			}
		}
	}
	if len(notStored) > 0 {
		t.Errorf("%d messages not stored: %v", len(notStored), first(notStored, 10))
	}
	if len(badChats) > 0 {
		t.Errorf("chats with extra or missing objects: %v", first(badChats, 5))
	}
	tl.lost = len(lost) + len(strangers)
	for _, id := range notStored {
		if !slices.Contains(lost, id) {
			tl.lost++
		}
		if _, ok := c.results[id]; ok {
			tl.unstored++
		}
	}
	if tl.unstored > 0 {
		t.Errorf("%d results published for messages that are not stored", tl.unstored)
	}
	// No message text and no API key in the logs, whatever went wrong.
	var secrets []string
	for _, e := range l.events {
		if e.text != "" {
			secrets = append(secrets, e.text)
		}
	}
	if r.sc.apiKey != "" {
		secrets = append(secrets, r.sc.apiKey)
	}
	if leaks := leaked(r.fleet.logs(), secrets); len(leaks) > 0 {
		t.Errorf("the workers' logs hold %d secrets (message texts or the API key), e.g. %q", len(leaks), first(leaks, 3))
	}

	if r.sc.felt != nil {
		if why := r.sc.felt(r, tl); why != "" {
			t.Errorf("the fault had no visible effect: %s", why)
		}
	}
	return tl
}

func first[T any](xs []T, n int) []T { return xs[:min(n, len(xs))] }

func formatTable(rows []*tally) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %-8s %7s %6s %11s %5s %4s %8s %7s %8s %6s %5s %8s %8s  %s\n",
		"scenario", "queues", "workers", "events", "results", "lost", "dup", "unstored", "dlq", "degraded", "failed", "again", "reorder*", "drain", "fault")
	for _, r := range rows {
		drain := "NOT DRAINED"
		if r.drain >= 0 {
			drain = r.drain.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-24s %-8s %7d %6d %11s %5d %4d %8d %7s %8d %6.0f %5d %8d %8s  %s\n",
			r.name, r.queues, r.workers, r.events, fmt.Sprintf("%d/%d", r.results, r.users), r.lost, r.dups, r.unstored,
			fmt.Sprintf("%d/%d", r.dlq, r.poison), r.degraded, r.failed, r.again, r.reorders, drain, r.note)
	}
	b.WriteString("results: distinct user-message results/user messages; dup: results published more than once;\n" +
		"unstored: results published for messages not stored in Weaviate;\n" +
		"dlq: poison events in the dead-letter queue/sent; failed: messages left for redelivery (workers that exited cleanly);\n" +
		"again: valid events received more than once (their result's receive_count > 1);\n" +
		"reorder*: per-chat order inversions among redelivered events, made by kumo's requeue (SQS keeps FIFO group order);\n" +
		"drain: from the end of the load and of the fault to the last result with the input queue empty\n")
	return b.String()
}

// receiveCounts reads the workers' logs: each user message's highest
// receive_count when its result was published.
func receiveCounts(logs []byte) map[string]int {
	out := map[string]int{}
	for _, line := range bytes.Split(logs, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"message preprocessed"`)) {
			continue
		}
		var l struct {
			EventID      string `json:"event_id"`
			ReceiveCount int    `json:"receive_count"`
		}
		if json.Unmarshal(line, &l) == nil && l.ReceiveCount > out[l.EventID] {
			out[l.EventID] = l.ReceiveCount
		}
	}
	return out
}

// checkContents checks what the results say: every message given as
// context has the text that was sent (U+FFFE and U+FFFF included); with
// stale mutes (FIFO), a user message's result is muted exactly when the
// chat was muted then, by its newest mute or unmute, whatever came late.
func (r *run) checkContents(tl *tally) {
	t, l, c := r.t, r.load, r.coll
	var wrong []string
	for k, text := range c.context {
		if e := l.valid[k.eventID]; e != nil && e.chat == k.chat && e.text != text {
			wrong = append(wrong, fmt.Sprintf("%s: %q, sent %q", k.eventID, text, e.text))
		}
		if strings.ContainsAny(text, "\ufffe\uffff") {
			tl.nonchars++
		}
	}
	if l.nonchars > 0 {
		tl.note = strings.TrimPrefix(tl.note+fmt.Sprintf("; %d texts with U+FFFE/U+FFFF, %d such messages given as context", l.nonchars, tl.nonchars), "; ")
	}
	if len(wrong) > 0 || len(c.textsDiffer) > 0 {
		t.Errorf("%d messages given as context with another text than was sent (%d differ between results): %q",
			len(wrong), len(c.textsDiffer), first(wrong, 3))
	}
	if len(l.mutedSeq) == 0 || r.sc.standard {
		return
	}
	var bad []string
	for id, s := range c.results {
		e := l.valid[id]
		if e == nil || e.kind != userMsg {
			continue
		}
		span := l.mutedSeq[e.chat]
		want := span[0] <= e.seq && e.seq < span[1]
		if want {
			tl.muted++
		}
		if s.muted != want {
			bad = append(bad, fmt.Sprintf("%s (position %d, muted from %d to %d): muted %v", id, e.seq, span[0], span[1], s.muted))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d results with the wrong muted state: %v", len(bad), first(bad, 5))
	}
	tl.note = strings.TrimPrefix(tl.note+fmt.Sprintf("; %d mutes, unmutes and stale copies; %d results muted, as due", l.mutes, tl.muted), "; ")
}

// repairIndexGap runs verify --repair on the scenario's Weaviate and
// returns the table's note; it fails the test unless every message a search
// missed was repaired.
func (r *run) repairIndexGap(ctx context.Context) string {
	w := r.sc.weaviate
	st, err := store.New(store.Config{URL: w.URL, GRPCAddr: w.GRPCAddr, APIKey: r.sc.apiKey})
	if err != nil {
		r.t.Errorf("verify --repair: %v", err)
		return "index gap: verify --repair could not connect"
	}
	defer st.Close()
	rep, err := verify.Run(ctx, st, verify.Options{Out: io.Discard, Repair: true})
	if err != nil || rep.Missing == 0 || rep.Repaired != rep.Missing {
		r.t.Errorf("verify --repair after a chat's count fell short: %+v, %v; want the gap found and every message repaired", rep, err)
	}
	r.t.Logf("index gap after Weaviate's SIGKILL: verify --repair found %d messages a search missed, repaired %d", rep.Missing, rep.Repaired)
	return fmt.Sprintf("index gap after the SIGKILL: %d messages repaired by verify --repair", rep.Repaired)
}
