package recall

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatprep/chatprep/bench/corpus"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/terms"
	"github.com/chatprep/chatprep/internal/tokens"
)

// Model is the worker's retrieval replayed in process: the history the
// store returns, an in-memory BM25 scored as Weaviate scores it (BM25F,
// k1 1.2, b 0.75) over the terms the store writes, the neighbours, and
// pipeline.Assemble's choice. It never talks to Weaviate; the bench
// measures the real thing.
type Model struct {
	Limits pipeline.Limits
	// Candidates is how many hits the search is asked for.
	Candidates int
	// Index and Query make a text's stored terms and a question's terms.
	Index func(text string) []string
	Query func(text string) []string
	// QueryText is the text the search is made with; nil: the event's.
	QueryText func(recent []event.Event, ask event.Event) string
	Counter   *tokens.Counter
	// K1 and B are BM25's parameters (the collection's
	// invertedIndexConfig.bm25); zero: Weaviate's defaults, 1.2 and 0.75.
	K1, B float64
	// Tenants, when set, are the collection the chat is searched in, as
	// Weaviate keeps its BM25 statistics: N and the mean length of
	// chat_terms are those of the chat's tenant (a shard of its own).
	Tenants *Tenants
	// Docs, without Tenants, is the number of objects in the collection
	// (one shard, as before issue 18): BM25's N, the mean length then the
	// chat's; zero: the chat's own messages. Either way the store's terms
	// are scoped to the chat, so a term's document frequency is the chat's.
	Docs int
	// Rerank, when set, reorders the hits before they are assembled.
	Rerank func(hits []event.ContextMessage, query []string, index func(string) []string) []event.ContextMessage
}

// counts caches token counts by text: counting is slow and the corpus
// repeats its chats once per question.
var counts sync.Map // encoding + "\x00" + text → int

func (m Model) count(text string) int {
	key := m.Counter.Name() + "\x00" + text
	if n, ok := counts.Load(key); ok {
		return n.(int)
	}
	n := m.Counter.Count(text)
	counts.Store(key, n)
	return n
}

// Result is the result the modelled worker would publish for ask, with the
// chat holding stored (oldest first, every message before ask).
func (m Model) Result(stored []event.Event, ask event.Event) *event.Result {
	msgs := make([]event.ContextMessage, len(stored))
	for i, ev := range stored {
		msgs[i] = event.ContextMessage{EventID: ev.EventID, Role: ev.Role, Text: ev.Text, SentAt: ev.SentAt, Tokens: m.count(ev.Text)}
	}
	lim := m.Limits.HistoryLimit
	a := pipeline.Answers{Event: ask, EventTokens: m.count(ask.Text), History: lastPerRole(msgs, lim+1)}
	if m.Limits.RelevanceLimit > 0 {
		text := ask.Text
		if m.QueryText != nil {
			text = m.QueryText(stored, ask)
		}
		idx := newBM25(msgs, m.Index)
		idx.k1, idx.b, idx.docs = cmp.Or(m.K1, idx.k1), cmp.Or(m.B, idx.b), m.Docs
		if m.Tenants != nil {
			idx.docs, idx.avgdl = m.Tenants.stats(ask.ChatID)
		}
		q := m.Query(text)
		a.Hits = idx.search(q, m.Candidates)
		if m.Rerank != nil {
			a.Hits = m.Rerank(a.Hits, q, m.Index)
		}
		a.Following = following(msgs, a.Hits, m.Limits.Neighbours, store.ReplyWindow)
	}
	l := m.Limits
	l.Count = m.count
	c := pipeline.Assemble(a, l)
	return &event.Result{EventID: ask.EventID, History: c.History, Relevant: c.Relevant, Tokens: c.Tokens, Burst: c.Burst}
}

// lastPerRole is the newest n messages of each role, oldest first.
func lastPerRole(msgs []event.ContextMessage, n int) []event.ContextMessage {
	var out []event.ContextMessage
	u, a := 0, 0
	for i := len(msgs) - 1; i >= 0 && (u < n || a < n); i-- {
		c := &u
		if msgs[i].Role == event.RoleAssistant {
			c = &a
		}
		if *c < n {
			*c++
			out = append(out, msgs[i])
		}
	}
	slices.Reverse(out)
	return out
}

// following is, per hit, the n messages after it within window (the
// store's ReplyWindow; 0: any).
func following(msgs []event.ContextMessage, hits []event.ContextMessage, n int, window time.Duration) map[string][]event.ContextMessage {
	pos := make(map[string]int, len(msgs))
	for i, m := range msgs {
		pos[m.EventID] = i
	}
	out := map[string][]event.ContextMessage{}
	for _, h := range hits {
		i := pos[h.EventID]
		f := msgs[i+1 : min(len(msgs), i+1+n)]
		for k, m := range f {
			if window > 0 && m.SentAt.Sub(h.SentAt) > window {
				f = f[:k]
				break
			}
		}
		out[h.EventID] = f
	}
	return out
}

// bm25 is one chat's BM25 index.
type bm25 struct {
	msgs  []event.ContextMessage
	tf    []map[string]int
	dl    []int
	avgdl float64
	df    map[string]int
	k1, b float64
	docs  int // the shard's objects, for IDF; below the chat's: the chat's
}

func newBM25(msgs []event.ContextMessage, index func(string) []string) *bm25 {
	b := &bm25{msgs: msgs, df: map[string]int{}, k1: 1.2, b: 0.75}
	total := 0
	for _, m := range msgs {
		ts := index(m.Text)
		tf := map[string]int{}
		for _, t := range ts {
			tf[t]++
		}
		for t := range tf {
			b.df[t]++
		}
		b.tf = append(b.tf, tf)
		b.dl = append(b.dl, len(ts))
		total += len(ts)
	}
	b.avgdl = float64(total) / float64(max(len(msgs), 1))
	return b
}

func (b *bm25) search(query []string, limit int) []event.ContextMessage {
	n := float64(max(len(b.msgs), b.docs))
	type scored struct {
		i     int
		score float64
	}
	var hits []scored
	for i, tf := range b.tf {
		s := 0.0
		for _, t := range query {
			f := float64(tf[t])
			if f == 0 {
				continue
			}
			df := float64(b.df[t])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			s += idf * f * (b.k1 + 1) / (f + b.k1*(1-b.b+b.b*float64(b.dl[i])/b.avgdl))
		}
		if s > 0 {
			hits = append(hits, scored{i, s})
		}
	}
	slices.SortStableFunc(hits, func(x, y scored) int {
		switch {
		case x.score > y.score:
			return -1
		case x.score < y.score:
			return 1
		}
		return y.i - x.i // Weaviate breaks ties by document id: newer objects last; take newest first here
	})
	out := make([]event.ContextMessage, 0, min(limit, len(hits)))
	for _, h := range hits[:min(limit, len(hits))] {
		m := b.msgs[h.i]
		s := h.score
		m.Score = &s
		out = append(out, m)
	}
	return out
}

// weaviateStop is Weaviate's "en" stopword preset: what its BM25 drops from
// a query on a word-tokenized property, and what chatprep v2 dropped.
var weaviateStop = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by for if in into is it no not of on or such that
		the their then there these they this to was will with`) {
		m[w] = true
	}
	return m
}()

// PlainTerms are the words of text without Weaviate's English stopwords,
// unstemmed: plain BM25 over the text, and chatprep v2's chat_terms.
func PlainTerms(text string) []string {
	ws := terms.Words(text, 0)
	out := ws[:0]
	for _, w := range ws {
		if !weaviateStop[w] {
			out = append(out, w)
		}
	}
	return out
}

// PlainQuery is PlainTerms without repeats.
func PlainQuery(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range PlainTerms(text) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// Baseline is the bar of the issue: a plain BM25 over the chat's text (its
// own statistics, N the chat's messages, as an index of that chat alone
// would have them), and
// for each hit, best first, the hit and the message after it, as long as
// they fit in budget tokens; no history.
func Baseline(stored []event.Event, ask event.Event, budget int, counter *tokens.Counter) *event.Result {
	m := Model{Counter: counter}
	msgs := make([]event.ContextMessage, len(stored))
	for i, ev := range stored {
		msgs[i] = event.ContextMessage{EventID: ev.EventID, Role: ev.Role, Text: ev.Text, SentAt: ev.SentAt, Tokens: m.count(ev.Text)}
	}
	hits := newBM25(msgs, PlainTerms).search(PlainQuery(ask.Text), len(msgs))
	next := following(msgs, hits, 1, 0) // the baseline: the next message, whenever
	res := &event.Result{EventID: ask.EventID}
	given := map[string]bool{}
	for _, h := range hits {
		add := []event.ContextMessage{}
		n := 0
		for _, x := range append([]event.ContextMessage{h}, next[h.EventID]...) {
			if !given[x.EventID] {
				add = append(add, x)
				n += x.Tokens
			}
		}
		if res.Tokens.Relevant+n > budget {
			break
		}
		for _, x := range add {
			given[x.EventID] = true
			res.Relevant = append(res.Relevant, x)
		}
		res.Tokens.Relevant += n
	}
	return res
}

// Tenants are the BM25 statistics of a multi-tenant messages collection
// (internal/store's tenants), as Weaviate v1.35 keeps them per shard, each
// tenant one: N is the shard's objects (its objects bucket's count) and a
// property's mean length is over the shard's objects (the inverted
// bucket's property lengths). A tenant holds an nth of the chats, so both
// are a mix of some of the collection's chats: a chat's common words weigh
// less against its rare ones than in one shard of every chat, more than in
// the chat alone. Document frequencies stay the chat's (chat_terms are
// scoped to it), so only N and the mean length come from here.
type Tenants struct {
	n      int
	index  func(string) []string
	docs   []int
	length []int // the terms of the tenant's objects, summed
}

// NewTenants is a collection of n tenants whose searched property holds
// index(text) (the model's Index: the terms chat_terms stores).
func NewTenants(n int, index func(string) []string) *Tenants {
	return &Tenants{n: n, index: index, docs: make([]int, n), length: make([]int, n)}
}

// Add stores msgs, each in its chat's tenant.
func (t *Tenants) Add(msgs []event.Event) {
	for _, m := range msgs {
		i := store.TenantIndex(m.ChatID, t.n)
		t.docs[i]++
		t.length[i] += len(t.index(m.Text))
	}
}

// stats are N and the mean property length of chatID's tenant.
func (t *Tenants) stats(chatID string) (docs int, avgdl float64) {
	i := store.TenantIndex(chatID, t.n)
	return t.docs[i], float64(t.length[i]) / float64(max(t.docs[i], 1))
}

// Collection is the collection row 7 searches: every question of chats in
// its own copy of its chat (chat corpus.CopyID), in n tenants (the
// worker's: store.DefaultTenants), with index's terms.
func Collection(chats []corpus.Chat, n int, index func(string) []string) *Tenants {
	t := NewTenants(n, index)
	for _, c := range chats {
		for _, q := range c.Questions {
			stored, _ := corpus.Copy(c, q, corpus.CopyID(c, q))
			t.Add(stored)
		}
	}
	return t
}

// CollectionDocs is about the messages row 7 stores (every question's
// copy of its chat, 263,217): the Docs of a model of the collection
// before issue 18, one shard of every chat, where Weaviate's BM25 counted
// every object in IDF's N (variants in the exploration; the worker's
// collection has tenants now, see Tenants).
const CollectionDocs = 250_000

// V3 is the model of the worker at its defaults (HISTORY_LIMIT 10,
// RELEVANCE_LIMIT 20, RELEVANCE_NEIGHBOURS 1, BURST_GAP 2m) and budget,
// searching the collection t (nil: each chat alone, N and lengths its
// own), which must hold terms.Index's terms.
func V3(c *tokens.Counter, budget int, t *Tenants) Model {
	return Model{
		Limits: pipeline.Limits{HistoryLimit: 10, RelevanceLimit: 20, Neighbours: 1, Budget: budget,
			BurstGap: 2 * time.Minute, ReferencesLimit: 10},
		Candidates: pipeline.Candidates(20, 10),
		Tenants:    t,
		Index:      terms.Index,
		Query:      func(s string) []string { return terms.Query(s, 256) },
		Counter:    c,
	}
}

// V2 is chatprep v2: 10 recent messages per role, 5 BM25 hits over the
// unstemmed words (chat-scoped too), no budget, no neighbours, searching
// the collection t, which must hold PlainTerms' terms.
func V2(c *tokens.Counter, t *Tenants) Model {
	return Model{
		Limits:     pipeline.Limits{HistoryLimit: 10, RelevanceLimit: 5},
		Candidates: 5 + 2*10 + 1,
		Tenants:    t,
		Index:      PlainTerms,
		Query:      PlainQuery,
		Counter:    c,
	}
}

// Ceiling is the lexical ceiling: every message the BM25 search matches at
// all, with its neighbour, and all recent history, without limits or
// budget. No retrieval over these terms finds evidence that shares no term
// with its question; what this misses needs another kind of search
// (hybrid, with a model).
func Ceiling(c *tokens.Counter) Model {
	m := V3(c, 0, nil) // every match: the order, and so the statistics, do not matter
	m.Candidates, m.Limits.RelevanceLimit = 1<<20, 1<<20
	return m
}
