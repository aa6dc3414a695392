package recall

import (
	"fmt"
	"os"
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

// TestExplore prints the recall of variants on the corpus (go test -v -run
// TestExplore ./bench/recall/ -explore).
func TestExplore(t *testing.T) {
	if os.Getenv("RECALL_EXPLORE") == "" {
		t.Skip("set RECALL_EXPLORE=1 to print the variants")
	}
	chats := corpus.Default()
	c := counter(t)
	report := func(name string, os []Outcome) {
		tune, hold, all, kinds := Split(os)
		fmt.Printf("%-34s tune %.3f  holdout %.3f  all %s\n    %s\n", name, tune.Recall(), hold.Recall(), all, KindsLine(kinds))
	}
	report("v2", run(chats, V2(c).Result))
	for _, cand := range []int{41, 80, 150} {
		for _, share := range []float64{0.1, 0.25, 0.5} {
			m := V3(c, 2000)
			m.Candidates, m.Limits.RecentShare = cand, share
			report(fmt.Sprintf("v3 2000 cand %d share %.2f", cand, share), run(chats, m.Result))
		}
	}
	for _, lim := range []int{20, 40} {
		for _, nb := range []int{1, 2} {
			m := V3(c, 2000)
			m.Candidates, m.Limits.RelevanceLimit, m.Limits.Neighbours = 150, lim, nb
			report(fmt.Sprintf("v3 2000 cand 150 lim %d nb %d", lim, nb), run(chats, m.Result))
		}
	}
	{
		m := V3(c, 2000)
		m.Candidates = 80
		m.QueryText = burstQuery
		report("v3 2000 cand 80 burst query", run(chats, m.Result))
		m.QueryText = recentQuery
		report("v3 2000 cand 80 recent user query", run(chats, m.Result))
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
