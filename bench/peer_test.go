package bench

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/store"
)

// Row 8: chatprep against a Node peer (bench/peer/worker.js: bbc's
// sqs-consumer, the AWS SDK v3, Weaviate's GraphQL and REST batch APIs,
// Promise.all for the five calls, batches of 10), on Weaviate with its own
// memtable defaults (as Weaviate Cloud runs it; the other rows tune them).
// In each round, one after another and each on a fresh Weaviate seeded
// alike and settled: the worker binary at its defaults (no OTLP endpoint),
// the Node peer, and the worker with every event's spans exported to a
// Jaeger on loopback (sampler always_on). The same events for each.
const (
	peerRounds = 2
	// Targets of issue 22 (ratios within one run).
	goalPeerEvents   = 2.5     // chatprep's events/s at least this × the peer's
	goalPeerCPU      = 1.0 / 6 // chatprep's worker CPU per event at most this × the peer's
	goalPeerWeaviate = 1.0 / 2 // chatprep's Weaviate CPU per event at most this × the peer's
	goalExportCost   = 1.15    // export on at most this × export off, worker CPU per event
)

// Who runs in a row 8 run.
const (
	peerChatprep = "chatprep"
	peerNode     = "node peer"
	peerExport   = "chatprep, export on"
	// peerIndexed is the worker on a collection made before issue 22,
	// whose text has a BM25 index that no search uses: what dropping it
	// saved.
	peerIndexed = "chatprep, text indexed"
)

// peerWho are the runs of each round, in order.
var peerWho = []string{peerChatprep, peerNode, peerExport, peerIndexed}

// peerRun is one run of row 8.
type peerRun struct {
	who   string
	round int
	runResult
	traces, spans int              // what Jaeger holds afterwards (export on)
	profile       *weaviateProfile // round 1: where Weaviate's CPU went
}

// peerResult is row 8.
type peerResult struct {
	node  string // node --version
	chats int
	runs  []peerRun
}

// peerDir is the Node peer's directory, checked to have its dependencies.
func peerDir(root string) (string, error) {
	dir := filepath.Join(root, "bench", "peer")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "sqs-consumer")); err != nil {
		return "", fmt.Errorf("the Node peer's dependencies are not installed: `make bench` installs them, or run `npm ci --prefix bench/peer` (%w)", err)
	}
	return dir, nil
}

// peerRow runs row 8 on events.
func peerRow(ctx context.Context, b *testing.B, e *env, events []workload.Event, chats int) (*peerResult, error) {
	dir, err := peerDir(e.root)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("row 8 needs Node 20 or later: %w", err)
	}
	version, err := exec.Command(node, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("node --version: %w", err)
	}
	j, err := e.startJaeger(ctx)
	if err != nil {
		return nil, err
	}
	defer j.Stop() //nolint:errcheck // a temporary directory
	res := &peerResult{node: string(bytes.TrimSpace(version)), chats: chats}
	script := filepath.Join(dir, "worker.js")
	for round := range peerRounds {
		for i, who := range peerWho {
			name := fmt.Sprintf("row8-%d-%d", round, i)
			wr := workerRun{name: name, bin: e.worker, args: []string{"run"}, events: events}
			seedFn := func(ctx context.Context, _ *devstack.Weaviate, st *store.Store) error { return seed(ctx, st, chats) }
			switch who {
			case peerNode:
				wr.bin, wr.args = node, []string{script}
				if *flagProfile != "" {
					wr.args = []string{"--cpu-prof", "--cpu-prof-dir", *flagProfile, "--cpu-prof-name", name + ".cpuprofile", script}
				}
				seedFn = func(ctx context.Context, w *devstack.Weaviate, _ *store.Store) error {
					setup := exec.CommandContext(ctx, node, script, "setup")
					setup.Env = append(os.Environ(), "WEAVIATE_URL="+w.URL)
					if out, err := setup.CombinedOutput(); err != nil {
						return fmt.Errorf("node worker.js setup: %w\n%s", err, out)
					}
					return seedPeer(ctx, w.URL, chats)
				}
			case peerIndexed:
				seedFn = func(ctx context.Context, w *devstack.Weaviate, st *store.Store) error {
					if err := indexText(ctx, w.URL, st, true); err != nil {
						return err
					}
					return seedChats(chats)(ctx, st)
				}
			case peerExport:
				wr.extra = map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLPURL, "OTEL_TRACES_SAMPLER": "always_on",
					"OTEL_BSP_MAX_QUEUE_SIZE": "262144"} // room for a backlog's bursts: every span exported
			}
			if who != peerNode && *flagProfile != "" {
				wr.bin, wr.args = e.benchWorker, profileArgs(name, "weaviate")
			}
			var prof *weaviateProfile
			if round == 0 {
				prof = &weaviateProfile{}
				wr.observe = perfObserver(perfFile(e.tmp, name), prof)
			}
			p := e.startPhaseOn(b, true, seedFn)
			r, err := p.run(ctx, wr)
			p.stop()
			if err != nil {
				return nil, fmt.Errorf("row 8, %s: %w", who, err)
			}
			run := peerRun{who: who, round: round + 1, runResult: r, profile: prof}
			if who == peerExport {
				if run.traces, run.spans, err = jaegerHolds(ctx, j.QueryURL, "process bench-"+name+"-in.fifo"); err != nil {
					return nil, err
				}
			}
			res.runs = append(res.runs, run)
		}
	}
	return res, nil
}

// indexText replaces the (empty) messages collection with one whose text
// property has its BM25 index, as collections made before issue 22 have,
// and brings it up to date as `worker setup` does. Without tenants the
// collection is made as before issue 18 too (st must then have been
// made with Config.Tenants < 0).
func indexText(ctx context.Context, weaviateURL string, st *store.Store, tenants bool) error {
	class := store.MessagesClass()
	if !tenants {
		class.MultiTenancyConfig = nil
	}
	for _, p := range class.Properties {
		if p.Name == "text" {
			on := true
			p.IndexSearchable = &on
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, weaviateURL+"/v1/schema/"+class.Class, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	b, err := json.Marshal(class)
	if err != nil {
		return err
	}
	if resp, err = http.Post(weaviateURL+"/v1/schema", "application/json", bytes.NewReader(b)); err != nil {
		return err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create the collection with its text indexed: %s: %s", resp.Status, out)
	}
	return st.EnsureSchema(ctx)
}

// seedPeer stores every chat's seed messages in the peer's collection
// through Weaviate's REST batch endpoint, 100 objects a request.
func seedPeer(ctx context.Context, weaviateURL string, chats int) error {
	type object struct {
		Class      string         `json:"class"`
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties"`
	}
	var batches [][]object
	var cur []object
	for c := range chats {
		for _, m := range workload.Seed(workload.ChatID(c)) {
			cur = append(cur, object{Class: "PeerMessage", ID: nameUUID(m.ChatID + "/" + m.EventID), Properties: map[string]any{
				"chat_id": m.ChatID, "role": m.Role, "event_id": m.EventID, "text": m.Text,
				"sent_at": m.SentAt.Format(time.RFC3339Nano), "channel": m.Channel,
			}})
			if len(cur) == 100 {
				batches, cur = append(batches, cur), nil
			}
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	var next atomic.Int64
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(batches) && errs[w] == nil; i = int(next.Add(1)) - 1 {
				errs[w] = postBatch(ctx, weaviateURL, map[string]any{"objects": batches[i]})
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// postBatch sends one REST batch and checks each object's result.
func postBatch(ctx context.Context, weaviateURL string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, weaviateURL+"/v1/batch/objects", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("seed the peer: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("seed the peer: %s: %s", resp.Status, out)
	}
	var results []struct {
		Result struct {
			Errors any `json:"errors"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		return fmt.Errorf("seed the peer: %w", err)
	}
	for _, r := range results {
		if r.Result.Errors != nil {
			return fmt.Errorf("seed the peer: %v", r.Result.Errors)
		}
	}
	return nil
}

// nameUUID is a UUID (version 5 layout) made from name.
func nameUUID(name string) string {
	h := sha1.Sum([]byte(name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// sum adds up who's runs: events, elapsed time, worker and Weaviate CPU.
func (p *peerResult) sum(who string) (n int, elapsed, worker, weaviate time.Duration) {
	for _, r := range p.runs {
		if r.who == who {
			n += r.n
			elapsed += r.elapsed
			worker += r.workerCPU
			weaviate += r.weaviate
		}
	}
	return n, elapsed, worker, weaviate
}

func (p *peerResult) eventsPerSec(who string) float64 {
	n, elapsed, _, _ := p.sum(who)
	return float64(n) / max(elapsed.Seconds(), 1e-9)
}

func (p *peerResult) workerPerEvent(who string) time.Duration {
	n, _, cpu, _ := p.sum(who)
	return cpu / time.Duration(max(n, 1))
}

func (p *peerResult) weaviatePerEvent(who string) time.Duration {
	n, _, _, cpu := p.sum(who)
	return cpu / time.Duration(max(n, 1))
}

func (p *peerResult) markdown(pr func(format string, a ...any)) {
	pr("## 8. chatprep and a Node peer, on Weaviate's default settings\n\n")
	pr("The peer is `bench/peer/worker.js` (%s): the same job written as a competent Node team would write it first: "+
		"bbc's sqs-consumer (batches of 10, one consumer, a FIFO batch's chats at once and each chat's messages in order), "+
		"the AWS SDK v3 for JavaScript (SQS's JSON protocol), Weaviate's GraphQL API for the two history searches, "+
		"the BM25 relevance search over the text and the muted state (a filtered search), its REST batch endpoint for the store "+
		"(one object a request), the five calls at once with Promise.all, one SendMessage per result, deleted after publishing "+
		"(DeleteMessageBatch), one JSON log line per event; its own collections (text with word tokenization, ids with field "+
		"tokenization, Weaviate's default indexes). No CloudWatch metrics. Each run on a fresh Weaviate %s with its own memtable "+
		"defaults (no tuning: as Weaviate Cloud runs it), seeded alike (%d chats × %d messages) and settled, the same %s events "+
		"enqueued at once; in each round the worker at its defaults (no OTLP endpoint), the peer, and the worker exporting every "+
		"event's spans (OTEL_TRACES_SAMPLER=always_on, OTLP/HTTP to a Jaeger on loopback), and the worker on a messages collection "+
		"made before issue 22 (its text property BM25-indexed, which no search of a collection without a vectorizer reads). CPU is each process's own "+
		"(/proc, user + system).\n\n",
		p.node, devstack.WeaviateVersion, p.chats, workload.SeedMessages, groupThousands(fmt.Sprint(p.runs[0].n)))
	pr("| round | worker | events/s | worker CPU / event | Weaviate CPU / event | SQS calls / event | latency p50 | p95 | peak RSS | in Jaeger afterwards |\n")
	pr("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range p.runs {
		traces := "—"
		if r.who == peerExport {
			traces = fmt.Sprintf("%s traces, %s spans", groupThousands(fmt.Sprint(r.traces)), groupThousands(fmt.Sprint(r.spans)))
		}
		pr("| %d | %s | %s | %s | %s | %.3f | %s | %s | %s | %s |\n", r.round, r.who, num(r.eventsPerSec()), dur(r.perEvent(r.workerCPU)),
			dur(r.perEvent(r.weaviate)), sqsPerEvent(&r.runResult), dur(percentile(r.e2e, 50)), dur(percentile(r.e2e, 95)), mb(r.maxRSS), traces)
	}
	pr("\nOver the rounds: chatprep **%s** events/s against the peer's %s (**%.2f×**); worker CPU per event **%s** against %s (**%.2f** of it); "+
		"Weaviate CPU per event **%s** against %s (**%.2f** of it); export on: worker CPU per event %s against %s off (**×%.2f**).\n\n",
		num(p.eventsPerSec(peerChatprep)), num(p.eventsPerSec(peerNode)), p.eventsRatio(),
		dur(p.workerPerEvent(peerChatprep)), dur(p.workerPerEvent(peerNode)), p.cpuRatio(),
		dur(p.weaviatePerEvent(peerChatprep)), dur(p.weaviatePerEvent(peerNode)), p.weaviateRatio(),
		dur(p.workerPerEvent(peerExport)), dur(p.workerPerEvent(peerChatprep)), p.exportRatio())
	pr("The text's BM25 index (issue 22 left it out of new collections): Weaviate CPU per event **%s** with it against **%s** without (×%.2f), %s against %s events/s.\n\n",
		dur(p.weaviatePerEvent(peerIndexed)), dur(p.weaviatePerEvent(peerChatprep)),
		float64(p.weaviatePerEvent(peerIndexed))/float64(max(p.weaviatePerEvent(peerChatprep), 1)),
		num(p.eventsPerSec(peerIndexed)), num(p.eventsPerSec(peerChatprep)))
	var names []string
	var profiles []*weaviateProfile
	for _, r := range p.runs {
		if r.round == 1 {
			pr("- CPU per event, round 1, %s: %s.\n", r.who, cpuSplit(r.n, r.workerCPU, r.weaviate, r.harness, r.busy, r.all))
			names, profiles = append(names, r.who), append(profiles, r.profile)
		}
	}
	pr("\n")
	markdownProfiles(pr, names, profiles)
}

func (p *peerResult) eventsRatio() float64 {
	return p.eventsPerSec(peerChatprep) / p.eventsPerSec(peerNode)
}
func (p *peerResult) cpuRatio() float64 {
	return float64(p.workerPerEvent(peerChatprep)) / float64(max(p.workerPerEvent(peerNode), 1))
}
func (p *peerResult) weaviateRatio() float64 {
	return float64(p.weaviatePerEvent(peerChatprep)) / float64(max(p.weaviatePerEvent(peerNode), 1))
}
func (p *peerResult) exportRatio() float64 {
	return float64(p.workerPerEvent(peerExport)) / float64(max(p.workerPerEvent(peerChatprep), 1))
}

// targets writes issue 22's targets as rows of the targets table.
func (p *peerResult) targets(pr func(format string, a ...any)) {
	pr("\n## Targets (issue 22, row 8)\n\n| target | measured | |\n| --- | ---: | --- |\n")
	pr("| events/s at least %.1f× the Node peer's | %.2f× | %s |\n", goalPeerEvents, p.eventsRatio(), check(p.eventsRatio() >= goalPeerEvents))
	pr("| worker CPU per event at most 1/%.0f of the peer's | %.2f of it (1/%.1f) | %s |\n", 1/goalPeerCPU, p.cpuRatio(), 1/max(p.cpuRatio(), 1e-9), check(p.cpuRatio() <= goalPeerCPU))
	pr("| Weaviate CPU per event at most 1/%.0f of the peer's | %.2f of it | %s |\n", 1/goalPeerWeaviate, p.weaviateRatio(), check(p.weaviateRatio() <= goalPeerWeaviate))
	pr("| export on (sampler 1.0, Jaeger) at most ×%.2f the worker CPU per event of export off | ×%.2f | %s |\n\n", goalExportCost, p.exportRatio(), check(p.exportRatio() <= goalExportCost))
}
