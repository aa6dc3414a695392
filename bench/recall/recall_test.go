package recall

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/bench/corpus"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/terms"
	"github.com/chatprep/chatprep/internal/tokens"
)

// run evaluates fn over every question of chats, each in its copy of its
// chat as row 7 stores it (so in its tenant of Collection).
func run(chats []corpus.Chat, fn func(stored []event.Event, ask event.Event) *event.Result) []Outcome {
	var out []Outcome
	for _, c := range chats {
		for _, q := range c.Questions {
			stored, ask := corpus.Copy(c, q, corpus.CopyID(c, q))
			out = append(out, Score(c, q, fn(stored, ask)))
		}
	}
	return out
}

func counter(t testing.TB) *tokens.Counter {
	c, err := tokens.New(tokens.DefaultEncoding)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// BenchmarkExplore prints the recall of the variants measured on the corpus
// (the README's table of ideas): go test -run '^$' -bench Explore
// -benchtime 1x ./bench/recall/. A benchmark, not a test: it asserts
// nothing and takes a few minutes.
func BenchmarkExplore(b *testing.B) {
	for range b.N {
		explore(b)
	}
}

func explore(t testing.TB) {
	chats := corpus.Default()
	c := counter(t)
	coll, plain := Collection(chats, store.DefaultTenants, terms.Index), Collection(chats, store.DefaultTenants, PlainTerms)
	report := func(name string, os []Outcome) {
		by := ByChatKind(os)
		_, _, _, kinds := Split(os)
		a := by[""]
		fmt.Printf("%-46s all %.3f (tuned %.3f, held out %.3f), any %.2f, %.0f tokens\n    %s\n    %s\n", name, a.All.Recall(),
			a.Tune.Recall(), a.Holdout.Recall(), a.All.AnyShare(), a.All.MeanTokens(), ChatKindsLine(by), KindsLine(kinds))
	}
	v3 := func(f func(*Model)) Model {
		m := V3(c, 2000, coll)
		if f != nil {
			f(&m)
		}
		return m
	}
	report("v2", run(chats, V2(c, plain).Result))
	for _, budget := range []int{1000, 2000, 4000} {
		report(fmt.Sprintf("baseline %d", budget), run(chats, func(s []event.Event, a event.Event) *event.Result { return Baseline(s, a, budget, c) }))
		report(fmt.Sprintf("v3 %d", budget), run(chats, V3(c, budget, coll).Result))
	}
	report("lexical ceiling", run(chats, Ceiling(c).Result))
	for _, v := range []struct {
		name string
		m    Model
	}{
		{"v3, N the chat's own messages", v3(func(m *Model) { m.Tenants = nil })},
		{"v3, one shard of every chat (before issue 18)", v3(func(m *Model) { m.Tenants, m.Docs = nil, CollectionDocs })},
		{"v3, 16 tenants", v3(func(m *Model) { m.Tenants = Collection(chats, 16, terms.Index) })},
		{"v3, 256 tenants", v3(func(m *Model) { m.Tenants = Collection(chats, 256, terms.Index) })},
		{"v3, 41 candidates", v3(func(m *Model) { m.Candidates = 41 })},
		{"v3, 80 candidates", v3(func(m *Model) { m.Candidates = 80 })},
		{"v3, recent share 0.25", v3(func(m *Model) { m.Limits.RecentShare = 0.25 })},
		{"v3 1000, recent share 0.25", func() Model { m := V3(c, 1000, coll); m.Limits.RecentShare = 0.25; return m }()},
		{"v3 1000, recent share 0", func() Model { m := V3(c, 1000, coll); m.Limits.RecentShare = 1e-9; return m }()},
		{"v3, BM25 b 0.3", v3(func(m *Model) { m.B = 0.3 })},
		{"v3, BM25 b 0, k1 0.6", v3(func(m *Model) { m.B, m.K1 = 1e-9, 0.6 })},
		{"v3, question words not searched", v3(func(m *Model) { m.Query = withoutQuestionWords })},
		{"v3, unstemmed, Weaviate's stop words", v3(func(m *Model) { m.Index, m.Query = PlainTerms, PlainQuery })},
		{"v3, unstemmed, no neighbours", v3(func(m *Model) { m.Index, m.Query, m.Limits.Neighbours = PlainTerms, PlainQuery, 0 })},
		{"v3, burst words in the query", v3(func(m *Model) { m.QueryText = burstQuery })},
		{"v3, previous user message in the query", v3(func(m *Model) { m.QueryText = recentQuery })},
		{"v3, recency term 0.25", v3(func(m *Model) { m.Rerank = recency(0.25) })},
		{"v3, one hit per half hour first", v3(func(m *Model) { m.Rerank = diverse })},
		{"v3, most query words first", v3(func(m *Model) { m.Rerank = coverage })},
		{"v3, RELEVANCE_LIMIT 30", v3(func(m *Model) { m.Limits.RelevanceLimit, m.Candidates = 30, 80 })},
		{"v3, RELEVANCE_LIMIT 40", v3(func(m *Model) { m.Limits.RelevanceLimit, m.Candidates = 40, 100 })},
		{"v3 4000, RELEVANCE_LIMIT 40", func() Model { m := V3(c, 4000, coll); m.Limits.RelevanceLimit, m.Candidates = 40, 100; return m }()},
	} {
		report(v.name, run(chats, v.m.Result))
	}
	for _, v := range []struct {
		name string
		x    variant
	}{
		{"v3, feedback: 5 best hits' 10 words added", variant{feedback: [2]int{5, 10}}},
		{"v3, the next message's words stored too", variant{neighbourWords: 1}},
		{"v3, the previous message's words stored too", variant{neighbourWords: -1}},
		{"v3, passages as exchanges (hit and reply scored)", variant{exchanges: true}},
	} {
		v.x.Model = V3(c, 2000, coll)
		report(v.name, run(chats, v.x.Result))
	}
}

// questionWords are the words a question starts with.
var questionWords = map[string]bool{"what": true, "which": true, "where": true, "when": true, "who": true, "whom": true, "whose": true, "how": true, "why": true}

// withoutQuestionWords is terms.Query without the question words.
func withoutQuestionWords(text string) []string {
	var out []string
	for _, t := range terms.Query(text, 256) {
		if !questionWords[t] {
			out = append(out, t)
		}
	}
	return out
}

// variant is the model with what a Model cannot say: the search made
// twice (feedback), other messages' words indexed with each message, or
// passages ranked as exchanges.
type variant struct {
	Model
	// feedback: the best [0] hits' [1] most weighty words (by score
	// share, not already asked) added to the query, the search made again
	// (RM3-like pseudo-relevance feedback; one more round trip).
	feedback [2]int
	// neighbourWords: each message indexed with its own words and those of
	// the message after it (1) or before it (-1), within the reply window.
	neighbourWords int
	// exchanges: a hit and the message after it scored together (the
	// larger score and a tenth of the smaller), passages that do not
	// overlap, best first: a reply that matches brings the message it
	// answers as the passage's hit.
	exchanges bool
}

func (v variant) Result(stored []event.Event, ask event.Event) *event.Result {
	msgs := make([]event.ContextMessage, len(stored))
	for i, ev := range stored {
		msgs[i] = event.ContextMessage{EventID: ev.EventID, Role: ev.Role, Text: ev.Text, SentAt: ev.SentAt, Tokens: v.count(ev.Text)}
	}
	indexed := make(map[string]string, len(msgs)) // text → what is indexed for it
	for i, m := range msgs {
		t := m.Text
		if j := i + v.neighbourWords; v.neighbourWords != 0 && j >= 0 && j < len(msgs) {
			if d := msgs[j].SentAt.Sub(m.SentAt); d <= store.ReplyWindow && d >= -store.ReplyWindow {
				t += " " + msgs[j].Text
			}
		}
		indexed[m.Text] = t
	}
	index := func(text string) []string { return v.Index(indexed[text]) }
	idx := newBM25(msgs, index)
	idx.docs = v.Docs
	q := v.Query(ask.Text)
	hits := idx.search(q, v.Candidates)
	if k, n := v.feedback[0], v.feedback[1]; k > 0 {
		asked := map[string]bool{}
		for _, t := range q {
			asked[t] = true
		}
		weight := map[string]float64{}
		for _, h := range hits[:min(k, len(hits))] {
			ts := index(h.Text)
			for _, t := range ts {
				if !asked[t] {
					weight[t] += *h.Score / float64(len(ts))
				}
			}
		}
		more := slices.SortedFunc(maps.Keys(weight), func(a, b string) int { return cmp.Or(cmp.Compare(weight[b], weight[a]), strings.Compare(a, b)) })
		hits = idx.search(append(slices.Clone(q), more[:min(n, len(more))]...), v.Candidates)
	}
	if v.exchanges {
		hits = exchangeHits(msgs, hits)
	}
	l := v.Limits
	l.Count = v.count
	a := pipeline.Answers{Event: ask, EventTokens: v.count(ask.Text), History: lastPerRole(msgs, l.HistoryLimit+1), Hits: hits,
		Following: following(msgs, hits, l.Neighbours, store.ReplyWindow)}
	cc := pipeline.Assemble(a, l)
	return &event.Result{EventID: ask.EventID, History: cc.History, Relevant: cc.Relevant, Tokens: cc.Tokens}
}

// exchangeHits ranks each stretch of a message and the next one (within
// the reply window) by the larger of their scores and a tenth of the
// smaller (a message not among hits scores 0), keeps stretches that do not
// overlap, best first, and returns their first messages as the hits; at
// equal scores a stretch that starts with a hit first.
func exchangeHits(msgs, hits []event.ContextMessage) []event.ContextMessage {
	pos := make(map[string]int, len(msgs))
	for i, m := range msgs {
		pos[m.EventID] = i
	}
	score := map[int]float64{}
	for _, h := range hits {
		score[pos[h.EventID]] = *h.Score
	}
	linked := func(i int) bool { return i+1 < len(msgs) && msgs[i+1].SentAt.Sub(msgs[i].SentAt) <= store.ReplyWindow }
	ex := map[int]float64{}
	for i := range score {
		for _, st := range []int{i - 1, i} {
			if st < 0 || st == i-1 && !linked(st) {
				continue
			}
			a, b := score[st], 0.0
			if linked(st) {
				b = score[st+1]
			}
			ex[st] = max(a, b) + 0.1*min(a, b)
		}
	}
	starts := slices.SortedFunc(maps.Keys(ex), func(a, b int) int {
		if ex[a] != ex[b] {
			return cmp.Compare(ex[b], ex[a])
		}
		if (score[a] > 0) != (score[b] > 0) {
			if score[a] > 0 {
				return -1
			}
			return 1
		}
		return b - a
	})
	var out []event.ContextMessage
	covered := map[int]bool{}
	for _, i := range starts {
		if covered[i] || covered[i+1] {
			continue
		}
		covered[i], covered[i+1] = true, true
		m := msgs[i]
		s := ex[i]
		m.Score = &s
		out = append(out, m)
	}
	return out
}

// burstQuery is the event's text with its burst's.
func burstQuery(stored []event.Event, ask event.Event) string {
	text := ask.Text
	prev := ask.SentAt
	for i := len(stored) - 1; i >= 0; i-- {
		m := stored[i]
		if m.Role != event.RoleUser || prev.Sub(m.SentAt) >= 2*time.Minute {
			break
		}
		text = m.Text + " " + text
		prev = m.SentAt
	}
	return text
}

// recentQuery is burstQuery with the last user message before the last
// assistant message.
func recentQuery(stored []event.Event, ask event.Event) string {
	text := burstQuery(stored, ask)
	seenAssistant := false
	for i := len(stored) - 1; i >= 0; i-- {
		if stored[i].Role == event.RoleAssistant {
			seenAssistant = true
		} else if seenAssistant {
			return stored[i].Text + " " + text
		}
	}
	return text
}

// diverse moves a hit sent within 30 minutes of a better hit behind every
// hit that is not.
func diverse(hits []event.ContextMessage, _ []string, _ func(string) []string) []event.ContextMessage {
	var first, later []event.ContextMessage
	for _, h := range hits {
		near := false
		for _, f := range first {
			if d := h.SentAt.Sub(f.SentAt); d < 30*time.Minute && d > -30*time.Minute {
				near = true
				break
			}
		}
		if near {
			later = append(later, h)
		} else {
			first = append(first, h)
		}
	}
	return append(first, later...)
}

// coverage orders hits by the distinct query terms they hold, then score.
func coverage(hits []event.ContextMessage, q []string, index func(string) []string) []event.ContextMessage {
	n := func(m event.ContextMessage) int {
		ts := map[string]bool{}
		for _, t := range index(m.Text) {
			ts[t] = true
		}
		c := 0
		for _, t := range q {
			if ts[t] {
				c++
			}
		}
		return c
	}
	out := slices.Clone(hits)
	slices.SortStableFunc(out, func(a, b event.ContextMessage) int { return n(b) - n(a) })
	return out
}

// TestV3BeatsV2AndTheBaseline guards the retrieval on the corpus (the
// model, deterministic): v3 at the default budget finds more evidence than
// v2 and than the plain BM25-plus-reply baseline at the same budget, on
// the tuned half and on the held-out half; and no lexical retrieval can
// pass the ceiling (every message BM25 matches at all).
func TestV3BeatsV2AndTheBaseline(t *testing.T) {
	t.Parallel()
	chats := corpus.Default()
	c := counter(t)
	index, plain := memo(terms.Index), memo(PlainTerms)
	m3 := V3(c, 2000, Collection(chats, store.DefaultTenants, index))
	m3.Index = index
	m2 := V2(c, Collection(chats, store.DefaultTenants, plain))
	m2.Index = plain
	ceil := Ceiling(c)
	ceil.Index = index
	v3t, v3h, v3, _ := Split(run(chats, m3.Result))
	v2t, v2h, _, _ := Split(run(chats, m2.Result))
	bt, bh, base, _ := Split(run(chats, func(s []event.Event, a event.Event) *event.Result { return Baseline(s, a, 2000, c) }))
	_, _, ceiling, _ := Split(run(chats, ceil.Result))
	t.Logf("v3 %s; baseline %s; ceiling %.3f", v3, base, ceiling.Recall())
	for _, h := range []struct {
		name         string
		v3, v2, base Tally
	}{{"tuned half", v3t, v2t, bt}, {"held-out half", v3h, v2h, bh}} {
		if h.v3.Recall() <= h.v2.Recall() || h.v3.Recall() <= h.base.Recall() {
			t.Errorf("%s: v3 recall %.3f, v2 %.3f, baseline %.3f", h.name, h.v3.Recall(), h.v2.Recall(), h.base.Recall())
		}
	}
	if v3.Recall() > ceiling.Recall() || base.Recall() > ceiling.Recall() {
		t.Errorf("a recall above the lexical ceiling %.3f: v3 %.3f, baseline %.3f", ceiling.Recall(), v3.Recall(), base.Recall())
	}
	if v3.MeanTokens() > 2000 {
		t.Errorf("v3 at budget 2000: %.0f tokens per result", v3.MeanTokens())
	}
}

// memo is index with its terms kept by text. The corpus holds each chat
// once per question, and the model indexes the chat's messages again for
// each (terms.Index stems every word: most of the test's time, as counting
// tokens was before Model.count kept the counts). index is a pure function
// and the model only reads the terms it returns, so the figures are the
// same.
func memo(index func(string) []string) func(string) []string {
	var kept sync.Map // text → []string
	return func(text string) []string {
		if ts, ok := kept.Load(text); ok {
			return ts.([]string)
		}
		ts := index(text)
		kept.Store(text, ts)
		return ts
	}
}

// recency multiplies each hit's score by 1 + w × its place in time among
// the hits (0 for the oldest, 1 for the newest), then orders by it.
func recency(w float64) func([]event.ContextMessage, []string, func(string) []string) []event.ContextMessage {
	return func(hits []event.ContextMessage, _ []string, _ func(string) []string) []event.ContextMessage {
		if len(hits) < 2 {
			return hits
		}
		lo, hi := hits[0].SentAt, hits[0].SentAt
		for _, h := range hits {
			if h.SentAt.Before(lo) {
				lo = h.SentAt
			}
			if h.SentAt.After(hi) {
				hi = h.SentAt
			}
		}
		span := float64(hi.Sub(lo))
		out := slices.Clone(hits)
		boosted := func(h event.ContextMessage) float64 {
			if span == 0 {
				return *h.Score
			}
			return *h.Score * (1 + w*float64(h.SentAt.Sub(lo))/span)
		}
		slices.SortStableFunc(out, func(a, b event.ContextMessage) int {
			switch x, y := boosted(a), boosted(b); {
			case x > y:
				return -1
			case x < y:
				return 1
			}
			return 0
		})
		return out
	}
}
