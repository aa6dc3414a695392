package bench

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/bench/corpus"
	"github.com/chatprep/chatprep/bench/recall"
	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/terms"
	"github.com/chatprep/chatprep/internal/tokens"
)

// Row 7: what reaches the context. The labelled corpus (bench/corpus), each
// question in its own copy of its chat, stored in a fresh Weaviate; then
// `bin/worker run` answers every question, once per configuration, and
// each result is scored (bench/recall): the evidence messages found in its
// history and relevant, and its tokens. Storing a question again in the
// same copy changes nothing (same event id, same object), so every
// configuration meets the same chats.

// contextBudgets are the budgets measured.
var contextBudgets = []int{1000, 2000, 4000}

// contextConfig is one configuration of the worker on the corpus.
type contextConfig struct {
	name   string
	budget int // for the table; 0: none
	extra  map[string]string
	bin    string // the worker; "": this commit's
}

// contextResult is one configuration's outcome.
type contextResult struct {
	contextConfig
	tune, holdout, all recall.Tally
	kinds              map[string]*recall.Tally
	byChat             map[string]*recall.Halves // per kind of chat
	run                runResult
	overBudget         int // results whose tokens exceed the budget (only by the always-included)
}

// baselineResult is the plain BM25-plus-reply baseline at one budget,
// computed in process on the same corpus.
type baselineResult struct {
	budget             int
	tune, holdout, all recall.Tally
	byChat             map[string]*recall.Halves
}

// contextReport is row 7.
type contextReport struct {
	chats, questions, stored int
	seed                     time.Duration
	configs                  []contextResult
	baselines                []baselineResult
	v2Model, v2Tune, v2Hold  recall.Tally                      // v2's retrieval exactly (unstemmed), modelled
	models                   map[int]map[string]*recall.Halves // v3 at each budget, modelled (recall.V3 in the worker's tenants)
	ceiling                  recall.Tally                      // every message BM25 matches at all (recall.Ceiling)
	ceilingByChat            map[string]*recall.Halves
	burst                    *burstResult
}

// contextConfigs are v2's limits and v3 at each budget.
func contextConfigs() []contextConfig {
	out := []contextConfig{{name: "v2's limits: 10 recent per role + 5 BM25 hits, no budget", extra: map[string]string{
		"RELEVANCE_LIMIT": "5", "RELEVANCE_NEIGHBOURS": "0", "CONTEXT_TOKEN_BUDGET": "0", "REFERENCES_LIMIT": "0"}}}
	for _, b := range contextBudgets {
		out = append(out, contextConfig{name: fmt.Sprintf("v3, budget %s", groupThousands(strconv.Itoa(b))), budget: b,
			extra: map[string]string{"CONTEXT_TOKEN_BUDGET": strconv.Itoa(b)}})
	}
	return out
}

// contextRow runs row 7 on a fresh Weaviate.
func contextRow(ctx context.Context, e *env, b *testing.B, quick bool) (*contextReport, error) {
	chats := corpus.Default()
	if quick {
		chats = corpus.Generate(2)
	}
	counter, err := tokens.New(tokens.DefaultEncoding)
	if err != nil {
		return nil, err
	}
	rep := &contextReport{chats: len(chats)}
	type ask struct {
		chat corpus.Chat
		q    corpus.Question
		ev   workload.Event
	}
	var asks []ask
	var stored [][]event.Event
	for _, c := range chats {
		for _, q := range c.Questions {
			s, a := corpus.Copy(c, q, corpus.CopyID(c, q))
			stored = append(stored, s)
			asks = append(asks, ask{c, q, workload.Event{Event: a, Body: workload.Body(a)}})
			rep.stored += len(s)
		}
	}
	rep.questions = len(asks)

	// The baselines and v2's exact retrieval, modelled on the same corpus.
	for _, budget := range contextBudgets {
		var os []recall.Outcome
		for i, a := range asks {
			os = append(os, recall.Score(a.chat, a.q, recall.Baseline(stored[i], a.ev.Event, budget, counter)))
		}
		br := baselineResult{budget: budget, byChat: recall.ByChatKind(os)}
		br.tune, br.holdout, br.all, _ = recall.Split(os)
		rep.baselines = append(rep.baselines, br)
	}
	{
		// The collection the worker searches: every copy, in the store's
		// tenants.
		m := recall.V2(counter, recall.Collection(chats, store.DefaultTenants, recall.PlainTerms))
		var os []recall.Outcome
		for i, a := range asks {
			os = append(os, recall.Score(a.chat, a.q, m.Result(stored[i], a.ev.Event)))
		}
		rep.v2Tune, rep.v2Hold, rep.v2Model, _ = recall.Split(os)
		m = recall.Ceiling(counter)
		os = os[:0]
		for i, a := range asks {
			os = append(os, recall.Score(a.chat, a.q, m.Result(stored[i], a.ev.Event)))
		}
		_, _, rep.ceiling, _ = recall.Split(os)
		rep.ceilingByChat = recall.ByChatKind(os)
		coll := recall.Collection(chats, store.DefaultTenants, terms.Index)
		rep.models = map[int]map[string]*recall.Halves{}
		for _, budget := range contextBudgets {
			m := recall.V3(counter, budget, coll)
			os = os[:0]
			for i, a := range asks {
				os = append(os, recall.Score(a.chat, a.q, m.Result(stored[i], a.ev.Event)))
			}
			rep.models[budget] = recall.ByChatKind(os)
		}
	}

	// Stored as the worker stores them (the harness's store counts tokens
	// too).
	seedFn := func(ctx context.Context, ws *store.Store) error {
		return putChats(ctx, ws, len(stored), func(i int) []event.Event { return stored[i] })
	}
	p := e.startPhase(b, seedFn)
	defer p.stop()
	rep.seed = p.seed
	events := make([]workload.Event, len(asks))
	for i, a := range asks {
		events[i] = a.ev
	}
	configs := contextConfigs()
	if e.workerCmp != "" {
		configs = append(configs, contextConfig{name: fmt.Sprintf("the worker at `%s` (-compare), budget 2,000", short(*flagCompare)), bin: e.workerCmp})
	}
	for i, cfg := range configs {
		bin := cmp.Or(cfg.bin, e.worker)
		r, err := p.run(ctx, workerRun{name: fmt.Sprintf("row7-%d", i), bin: bin, args: []string{"run"}, extra: cfg.extra,
			events: events, keep: true})
		if err != nil {
			return rep, err
		}
		cr := contextResult{contextConfig: cfg, run: r}
		var os []recall.Outcome
		for _, a := range asks {
			res := r.results[a.ev.EventID]
			os = append(os, recall.Score(a.chat, a.q, res))
			if cfg.budget > 0 && res.Tokens.History+res.Tokens.Relevant > cfg.budget {
				cr.overBudget++
			}
		}
		cr.tune, cr.holdout, cr.all, cr.kinds = recall.Split(os)
		cr.byChat = recall.ByChatKind(os)
		rep.configs = append(rep.configs, cr)
	}
	if rep.burst, err = burstRow(ctx, p); err != nil {
		return rep, err
	}
	return rep, nil
}

// burstResult is the burst row: three user messages of one chat.
type burstResult struct {
	queued, paced []*event.Result // in the order sent
}

// burstRow sends a 3-message burst twice: queued before the worker starts
// (it receives them together), and 300 ms apart to a running worker.
func burstRow(ctx context.Context, p *phase) (*burstResult, error) {
	out := &burstResult{}
	texts := []string{"hi", "I need", "the invoice for S00042"}
	mk := func(chat string, i int, at time.Time) workload.Event {
		ev := event.Event{EventID: fmt.Sprintf("%s-%d", chat, i), Type: event.TypeMessage, ChatID: chat, Role: event.RoleUser,
			Text: texts[i], SentAt: at, Channel: "whatsapp"}
		return workload.Event{Event: ev, Body: workload.Body(ev)}
	}
	base := time.Now().UTC().Truncate(time.Second)

	// Queued first: run() enqueues before it starts nothing; here the
	// queue is filled, then the worker started.
	q, err := p.queues(ctx, "row7-burst", nil)
	if err != nil {
		return out, err
	}
	vars, api, inURL, outURL := q.vars, q.api, q.in, q.out
	queued := []workload.Event{mk("burst-queued", 0, base), mk("burst-queued", 1, base.Add(time.Second)), mk("burst-queued", 2, base.Add(2*time.Second))}
	if _, err := enqueue(ctx, api, inURL, queued); err != nil {
		return out, err
	}
	c, err := startChild(ctx, "row7-burst", p.e.worker, []string{"run"}, vars)
	if err != nil {
		return out, err
	}
	defer func() {
		if c.proc.ExitCode() == -1 {
			c.proc.Kill()
		}
	}()
	if err := c.waitFinished(ctx, 3); err != nil {
		return out, err
	}
	paced := []workload.Event{mk("burst-paced", 0, base), mk("burst-paced", 1, base.Add(300*time.Millisecond)), mk("burst-paced", 2, base.Add(600*time.Millisecond))}
	for i, ev := range paced {
		if i > 0 {
			time.Sleep(300 * time.Millisecond) // the pacing is the measurement's input, not a wait for a result
		}
		if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(inURL), MessageBody: aws.String(ev.Body),
			MessageGroupId: aws.String(ev.ChatID), MessageDeduplicationId: aws.String(ev.EventID)}); err != nil {
			return out, err
		}
	}
	if err := c.waitFinished(ctx, 6); err != nil {
		return out, err
	}
	if _, _, err := c.stop(); err != nil {
		return out, err
	}
	results, err := collect(ctx, api, outURL, 6, true)
	if err != nil {
		return out, err
	}
	for _, ev := range queued {
		out.queued = append(out.queued, results[ev.EventID].result)
	}
	for _, ev := range paced {
		out.paced = append(out.paced, results[ev.EventID].result)
	}
	return out, nil
}

// Issue 17's targets.
const (
	goalRecall          = 0.80 // at the default budget
	goalOverBaseline    = 0.15
	goalEventsPerSecV2  = 0.90 // at least this share of v2's events/s
	goalWeaviateCPUOfV2 = 1.10 // at most this multiple of v2's Weaviate CPU per event
)

func (c *contextReport) at(budget int) *contextResult {
	for i := range c.configs {
		if c.configs[i].budget == budget {
			return &c.configs[i]
		}
	}
	return nil
}

func (c *contextReport) baseline(budget int) *baselineResult {
	for i := range c.baselines {
		if c.baselines[i].budget == budget {
			return &c.baselines[i]
		}
	}
	return nil
}

func (c *contextReport) markdown(p func(string, ...any)) {
	p("## 7. What reaches the context\n\n")
	p("The labelled corpus (`bench/corpus`, fixed seeds): %d long chats of three kinds — shop (orders, deliveries, invoices, opening hours, details given once), "+
		"casual two-person chit-chat in short turns, and friends (two people over 20–30 long sessions, turns of 15–45 words, questions in the third person about what happened, when, "+
		"in other words, and what was told over several sessions) — with %d questions asked at their end, each in its own copy of its chat (%s messages stored, %s). "+
		"Evidence recall is the share of the messages holding a question's answer that are in the result's history or relevant; "+
		"tokens are `tokens.history + tokens.relevant` (o200k_base). `bin/worker run` answers every question once per configuration, "+
		"against the real Weaviate; the baseline (plain BM25 over the text, each hit with the message after it, best first while the budget holds, no history) "+
		"and v2's exact retrieval (unstemmed terms) are computed by the bench on the same corpus (`bench/recall`). "+
		"Half the chats were held out while the retrieval was tuned.\n\n",
		c.chats, c.questions, groupThousands(fmt.Sprint(c.stored)), dur(c.seed))
	p("| | recall (all) | tuned half | held-out half | questions with any evidence | tokens / result | events/s | Weaviate CPU / event | worker CPU / event |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	p("| v2's retrieval (modelled: unstemmed BM25, 10+10 recent, 5 hits) | %.3f | %.3f | %.3f | %.2f | %s | | | |\n",
		c.v2Model.Recall(), c.v2Tune.Recall(), c.v2Hold.Recall(), c.v2Model.AnyShare(), num(c.v2Model.MeanTokens()))
	for _, cr := range c.configs {
		p("| %s | **%.3f** | %.3f | %.3f | %.2f | %s | %s | %s | %s |\n", cr.name, cr.all.Recall(), cr.tune.Recall(), cr.holdout.Recall(),
			cr.all.AnyShare(), num(cr.all.MeanTokens()), num(cr.run.eventsPerSec()), dur(cr.run.perEvent(cr.run.weaviate)), dur(cr.run.perEvent(cr.run.workerCPU)))
	}
	for _, b := range contextBudgets {
		if h := c.models[b][""]; h != nil {
			p("| v3, budget %s, modelled (`bench/recall`, the worker's tenants) | %.3f | %.3f | %.3f | %.2f | %s | | | |\n", groupThousands(fmt.Sprint(b)),
				h.All.Recall(), h.Tune.Recall(), h.Holdout.Recall(), h.All.AnyShare(), num(h.All.MeanTokens()))
		}
	}
	for _, b := range c.baselines {
		p("| baseline, budget %s | %.3f | %.3f | %.3f | %.2f | %s | | | |\n", groupThousands(fmt.Sprint(b.budget)), b.all.Recall(), b.tune.Recall(),
			b.holdout.Recall(), b.all.AnyShare(), num(b.all.MeanTokens()))
	}
	p("\n")
	p("- The lexical ceiling: every message the BM25 search matches at all, with its reply and all recent history, no limit, no budget "+
		"(modelled): **%.3f**, %s tokens per result. The rest of the evidence shares no word with its question (\"which hobbies\" for "+
		"\"bouldering\", \"ceramics course\" for \"pottery class\"): no keyword search finds it; a hybrid search with an embedding model can.\n",
		c.ceiling.Recall(), num(c.ceiling.MeanTokens()))
	if d := c.at(2000); d != nil {
		p("- By kind of question (v3, budget 2,000): %s.\n", recall.KindsLine(d.kinds))
	}
	p("\nBy kind of chat, recall (tuned half / held-out half):\n\n| | shop | casual | friends |\n| --- | ---: | ---: | ---: |\n")
	cells := func(by map[string]*recall.Halves) string {
		var out []string
		for _, k := range []string{"shop", "casual", "friends"} {
			if h := by[k]; h != nil {
				out = append(out, fmt.Sprintf("%.3f (%.3f / %.3f)", h.All.Recall(), h.Tune.Recall(), h.Holdout.Recall()))
			} else {
				out = append(out, "")
			}
		}
		return joinCells(out)
	}
	for _, cr := range c.configs {
		if cr.budget > 0 || cr.bin != "" {
			p("| %s | %s |\n", cr.name, cells(cr.byChat))
		}
	}
	for _, b := range contextBudgets {
		if by := c.models[b]; by != nil {
			p("| v3, budget %s, modelled | %s |\n", groupThousands(fmt.Sprint(b)), cells(by))
		}
	}
	for _, b := range c.baselines {
		p("| baseline, budget %s | %s |\n", groupThousands(fmt.Sprint(b.budget)), cells(b.byChat))
	}
	p("| the lexical ceiling (modelled) | %s |\n\n", cells(c.ceilingByChat))
	for _, cr := range c.configs {
		if cr.budget > 0 {
			p("- %s: %d of %d results over the budget, each only by the always-included burst and last exchange.\n", cr.name, cr.overBudget, c.questions)
		}
	}
	p("- The throughput columns are this corpus' questions (one per chat copy, all enqueued at once), not row 1's workload.\n\n")
	if b := c.burst; b != nil {
		p("Bursts: three user messages of one chat (\"hi\", \"I need\", \"the invoice for S00042\").\n\n")
		p("| | result 1 | result 2 | result 3 |\n| --- | --- | --- | --- |\n")
		for _, row := range []struct {
			name string
			rs   []*event.Result
		}{{"queued before the worker started", b.queued}, {"sent 300 ms apart to a running worker", b.paced}} {
			cells := make([]string, len(row.rs))
			for i, r := range row.rs {
				cells[i] = fmt.Sprintf("burst %v, superseded_by %q", r.Burst, r.SupersededBy)
			}
			p("| %s | %s |\n", row.name, joinCells(cells))
		}
		p("\n")
	}
}

func joinCells(cells []string) string {
	out := ""
	for i, c := range cells {
		if i > 0 {
			out += " | "
		}
		out += c
	}
	return out
}

func (c *contextReport) targets(p func(string, ...any), v3, v2 *runResult) {
	p("## Targets (issue 17)\n\n| target | measured | |\n| --- | ---: | --- |\n")
	if d, base := c.at(2000), c.baseline(2000); d != nil && base != nil {
		p("| evidence recall at 2,000 tokens at least %.2f (row 7) | %.3f | %s |\n", goalRecall, d.all.Recall(), check(d.all.Recall() >= goalRecall))
		p("| … and at least the baseline's + %.2f (%.3f) | +%.3f | %s |\n", goalOverBaseline, base.all.Recall(), d.all.Recall()-base.all.Recall(),
			check(d.all.Recall() >= base.all.Recall()+goalOverBaseline))
	}
	if v3 != nil && v2 != nil {
		r := v3.eventsPerSec() / v2.eventsPerSec()
		p("| events/s at most 10%% below v2's (row 1) | ×%.2f | %s |\n", r, check(r >= goalEventsPerSecV2))
		w := float64(v3.perEvent(v3.weaviate)) / float64(v2.perEvent(v2.weaviate))
		p("| Weaviate CPU per event at most 10%% above v2's (row 1) | ×%.2f | %s |\n", w, check(w <= goalWeaviateCPUOfV2))
	}
	if b := c.burst; b != nil && len(b.queued) == 3 && len(b.paced) == 3 {
		q := b.queued
		okQ := q[0].SupersededBy != "" && q[1].SupersededBy != "" && len(q[2].Burst) == 2 && q[2].SupersededBy == ""
		p("| a queued 3-message burst: the first two superseded, the last with both in its burst | %s | %s |\n", yesNo(okQ), check(okQ))
		okP := len(b.paced[2].Burst) == 2
		p("| sent 300 ms apart: the last with both in its burst | %s | %s |\n", yesNo(okP), check(okP))
	}
	p("\n")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
