// Package recall measures what reaches the context on the labelled corpus
// (bench/corpus): evidence recall (the share of the messages holding a
// question's answer that are in the result's history or relevant) and the
// tokens a result takes.
//
// It has two halves. Score counts recall from results, however they were
// made: the bench feeds it the results of the real worker against a real
// Weaviate. And an in-process model of the worker's retrieval (Model),
// which replays the worker's own steps (internal/terms for the terms,
// pipeline.Assemble for the choice) over an in-memory BM25 scored as
// Weaviate scores it, so that ideas can be measured over the whole corpus
// in seconds, and the plain BM25-plus-reply baseline that the issue sets as
// the bar.
package recall

import (
	"fmt"
	"slices"
	"strings"

	"github.com/chatprep/chatprep/bench/corpus"
	"github.com/chatprep/chatprep/internal/event"
)

// Outcome is what one result gave for one question.
type Outcome struct {
	Question corpus.Question
	ChatKind string // the kind of its chat (corpus.Chat.Kind)
	Holdout  bool
	Found    int // evidence messages in the context
	Tokens   int // tokens of history and relevant
}

// Tally sums outcomes.
type Tally struct {
	Questions, Evidence, Found, AnyFound int
	Tokens                               int
}

// Add counts one outcome.
func (t *Tally) Add(o Outcome) {
	t.Questions++
	t.Evidence += len(o.Question.Evidence)
	t.Found += o.Found
	if o.Found > 0 {
		t.AnyFound++
	}
	t.Tokens += o.Tokens
}

// Recall is the share of evidence messages found.
func (t Tally) Recall() float64 { return float64(t.Found) / float64(max(t.Evidence, 1)) }

// AnyShare is the share of questions with at least one evidence message found.
func (t Tally) AnyShare() float64 { return float64(t.AnyFound) / float64(max(t.Questions, 1)) }

// MeanTokens is the mean tokens per result.
func (t Tally) MeanTokens() float64 { return float64(t.Tokens) / float64(max(t.Questions, 1)) }

// String is one line of the tally.
func (t Tally) String() string {
	return fmt.Sprintf("recall %.3f (%d/%d), any %.2f, %.0f tokens/result", t.Recall(), t.Found, t.Evidence, t.AnyShare(), t.MeanTokens())
}

// Score is the outcome of one result for q, a question of c.
func Score(c corpus.Chat, q corpus.Question, r *event.Result) Outcome {
	in := map[string]bool{}
	for _, m := range r.History {
		in[m.EventID] = true
	}
	for _, m := range r.Relevant {
		in[m.EventID] = true
	}
	o := Outcome{Question: q, ChatKind: c.Kind, Holdout: c.Holdout, Tokens: r.Tokens.History + r.Tokens.Relevant}
	for _, id := range q.Evidence {
		if in[id] {
			o.Found++
		}
	}
	return o
}

// Split sums outcomes into the tuning half, the held-out half and all,
// and per question kind (all chats).
func Split(os []Outcome) (tune, holdout, all Tally, kinds map[string]*Tally) {
	kinds = map[string]*Tally{}
	for _, o := range os {
		all.Add(o)
		if o.Holdout {
			holdout.Add(o)
		} else {
			tune.Add(o)
		}
		k := kinds[o.Question.Kind]
		if k == nil {
			k = &Tally{}
			kinds[o.Question.Kind] = k
		}
		k.Add(o)
	}
	return tune, holdout, all, kinds
}

// Halves are the tallies of one set of outcomes: all, the tuning half and
// the held-out half.
type Halves struct{ All, Tune, Holdout Tally }

// ByChatKind sums outcomes per kind of chat (shop, casual, friends), and
// the whole under "".
func ByChatKind(os []Outcome) map[string]*Halves {
	out := map[string]*Halves{"": {}}
	for _, o := range os {
		for _, k := range []string{"", o.ChatKind} {
			h := out[k]
			if h == nil {
				h = &Halves{}
				out[k] = h
			}
			h.All.Add(o)
			if o.Holdout {
				h.Holdout.Add(o)
			} else {
				h.Tune.Add(o)
			}
		}
	}
	return out
}

// ChatKindsLine is recall per kind of chat, with its halves: "shop 0.851
// (0.850 / 0.852), …".
func ChatKindsLine(by map[string]*Halves) string {
	var parts []string
	for _, k := range sortedKeys(by) {
		if k == "" {
			continue
		}
		h := by[k]
		parts = append(parts, fmt.Sprintf("%s %.3f (%.3f / %.3f)", k, h.All.Recall(), h.Tune.Recall(), h.Holdout.Recall()))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

// KindsLine lists per-kind recall, sorted by kind.
func KindsLine(kinds map[string]*Tally) string {
	var parts []string
	for _, k := range sortedKeys(kinds) {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, kinds[k].Recall()))
	}
	return strings.Join(parts, ", ")
}
