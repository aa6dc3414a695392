package recall

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatprep/chatprep/bench/corpus"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/tokens"
)

// run evaluates fn over every question of chats.
func run(chats []corpus.Chat, fn func(stored []event.Event, ask event.Event) *event.Result) []Outcome {
	var out []Outcome
	for _, c := range chats {
		for _, q := range c.Questions {
			stored, ask := corpus.Copy(c, q, c.ID)
			out = append(out, Score(q, c.Holdout, fn(stored, ask)))
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
// nothing and takes a minute.
func BenchmarkExplore(b *testing.B) {
	for range b.N {
		explore(b)
	}
}

func explore(t testing.TB) {
	chats := corpus.Default()
	c := counter(t)
	report := func(name string, os []Outcome) {
		tune, hold, all, kinds := Split(os)
		fmt.Printf("%-34s tune %.3f  holdout %.3f  all %s\n    %s\n", name, tune.Recall(), hold.Recall(), all, KindsLine(kinds))
	}
	report("v2", run(chats, V2(c).Result))
	for _, cand := range []int{41, 80} {
		m := V3(c, 2000)
		m.Candidates = cand
		report(fmt.Sprintf("v3 2000 cand %d", cand), run(chats, m.Result))
		m.Rerank = diverse
		report(fmt.Sprintf("v3 2000 cand %d diverse", cand), run(chats, m.Result))
		m.Rerank = coverage
		report(fmt.Sprintf("v3 2000 cand %d coverage", cand), run(chats, m.Result))
	}
	{
		m := V3(c, 2000)
		m.Index, m.Query = PlainTerms, PlainQuery
		report("v3 2000 unstemmed, Weaviate's stop words", run(chats, m.Result))
		m.Limits.Neighbours = 0
		report("v3 2000 unstemmed, no neighbours", run(chats, m.Result))
	}
	for _, w := range []float64{0.25, 1} {
		m := V3(c, 2000)
		m.Rerank = recency(w)
		report(fmt.Sprintf("v3 2000 recency term %.2f", w), run(chats, m.Result))
	}
	for _, share := range []float64{0.1, 0.5} {
		m := V3(c, 2000)
		m.Limits.RecentShare = share
		report(fmt.Sprintf("v3 2000 recent share %.2f", share), run(chats, m.Result))
	}
	{
		m := V3(c, 2000)
		m.QueryText = burstQuery
		report("v3 2000 burst words in the query", run(chats, m.Result))
		m.QueryText = recentQuery
		report("v3 2000 previous user message in the query", run(chats, m.Result))
		m = V3(c, 2000)
		m.Limits.RelevanceLimit, m.Candidates = 40, 81
		report("v3 2000 RELEVANCE_LIMIT 40", run(chats, m.Result))
	}
	for _, budget := range []int{1000, 2000, 4000} {
		report(fmt.Sprintf("baseline %d", budget), run(chats, func(s []event.Event, a event.Event) *event.Result { return Baseline(s, a, budget, c) }))
		report(fmt.Sprintf("v3 %d", budget), run(chats, V3(c, budget).Result))
	}
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
	v3t, v3h, v3, _ := Split(run(chats, V3(c, 2000).Result))
	v2t, v2h, _, _ := Split(run(chats, V2(c).Result))
	bt, bh, base, _ := Split(run(chats, func(s []event.Event, a event.Event) *event.Result { return Baseline(s, a, 2000, c) }))
	_, _, ceiling, _ := Split(run(chats, Ceiling(c).Result))
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
