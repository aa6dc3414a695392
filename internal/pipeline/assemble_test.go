package pipeline_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/tokens"
)

// tm is a context message at minute m with n words (one token each for
// wordCounter), its Tokens left to be counted.
func tm(id string, role event.Role, minute, n int) event.ContextMessage {
	text := ""
	if n > 0 { // its id first: no two of them have the same words (see Assemble)
		text = id + strings.Repeat(" w", n-1)
	}
	return event.ContextMessage{EventID: id, Role: role, Text: text, SentAt: at(minute)}
}

// said is a context message with its text.
func said(id string, role event.Role, minute int, text string) event.ContextMessage {
	return event.ContextMessage{EventID: id, Role: role, Text: text, SentAt: at(minute)}
}

func hit(m event.ContextMessage, score float64) event.ContextMessage {
	m.Score = &score
	return m
}

func ev(id string, minute int) event.Event {
	return event.Event{EventID: id, ChatID: "c", Type: event.TypeMessage, Role: event.RoleUser, Text: "the question", SentAt: at(minute)}
}

var (
	u, a = event.RoleUser, event.RoleAssistant
)

func TestAssemble(t *testing.T) {
	t.Parallel()
	limits := pipeline.Limits{HistoryLimit: 10, RelevanceLimit: 5, Neighbours: 1, BurstGap: 2 * time.Minute,
		ReferencesLimit: 3, Count: wordCounter{}.Count}
	with := func(l pipeline.Limits, f func(*pipeline.Limits)) pipeline.Limits { f(&l); return l }
	old := []event.ContextMessage{tm("o1", u, 0, 10), tm("o2", a, 1, 10)}
	for _, tc := range []struct {
		name         string
		a            pipeline.Answers
		l            pipeline.Limits
		history      []string
		relevant     []string // "id" for a hit, "id<with" for a neighbour
		burst        []string
		tokens       event.Tokens
		superseded   string
		references   []string
		overBudgetOK bool
	}{
		{
			name: "no budget: everything within the limits, passages with their reply",
			a: pipeline.Answers{Event: ev("e", 30), EventTokens: 2,
				History: []event.ContextMessage{tm("h1", u, 20, 3), tm("h2", a, 21, 3), tm("e", u, 30, 2)},
				Hits:    []event.ContextMessage{hit(old[0], 2), hit(tm("h1", u, 20, 3), 1)},
				Following: map[string][]event.ContextMessage{"o1": {old[1], tm("o3", u, 2, 1)},
					"h1": {tm("h2", a, 21, 3)}}},
			l:        limits,
			history:  []string{"h1", "h2"},
			relevant: []string{"o1", "o2<o1"},
			tokens:   event.Tokens{History: 6, Relevant: 20, Event: 2},
		},
		{
			name: "the burst and the last exchange go in whatever the budget; nothing else then",
			a: pipeline.Answers{Event: ev("e", 30),
				History: []event.ContextMessage{tm("q", u, 10, 50), tm("ans", a, 11, 50), tm("b1", u, 29, 40), tm("b2", u, 29, 40)},
				Hits:    []event.ContextMessage{hit(old[0], 1)}},
			l:            with(limits, func(l *pipeline.Limits) { l.Budget = 100 }),
			history:      []string{"q", "ans", "b1", "b2"},
			burst:        []string{"b1", "b2"},
			relevant:     []string{},
			tokens:       event.Tokens{History: 180},
			overBudgetOK: true,
		},
		{
			name: "the burst stops at an assistant message and at a gap of BURST_GAP",
			a: pipeline.Answers{Event: ev("e", 30),
				History: []event.ContextMessage{tm("x", u, 20, 1), tm("r", a, 21, 1), tm("b0", u, 25, 1), tm("b1", u, 28, 1), tm("b2", u, 29, 1)}},
			l:       limits,
			history: []string{"x", "r", "b0", "b1", "b2"},
			burst:   []string{"b1", "b2"},
			tokens:  event.Tokens{History: 5},
		},
		{
			name: "recent history takes its share, passages the rest, then older history while it fits",
			a: pipeline.Answers{Event: ev("e", 30),
				History: []event.ContextMessage{tm("h1", u, 20, 10), tm("h2", a, 21, 10), tm("h3", u, 22, 10), tm("h4", a, 23, 10)},
				Hits:    []event.ContextMessage{hit(tm("p1", u, 1, 30), 3), hit(tm("big", u, 3, 500), 2), hit(tm("p2", u, 5, 10), 1)},
				Following: map[string][]event.ContextMessage{
					"p1": {tm("r1", a, 2, 10)}, "p2": {tm("r2", a, 6, 40)},
				}},
			// 100 tokens: h3 h4 (the last exchange, 20); the 10% share holds
			// no more; p1 r1 (40), big does not fit, p2 (10), r2 does not
			// fit; then h2 (10), h1 (10) = 90; h1 would make 100: fits.
			l:        with(limits, func(l *pipeline.Limits) { l.Budget = 100 }),
			history:  []string{"h1", "h2", "h3", "h4"},
			relevant: []string{"p1", "r1<p1", "p2"},
			tokens:   event.Tokens{History: 40, Relevant: 50},
		},
		{
			name: "a neighbour already given stays where it is; RELEVANCE_LIMIT counts passages",
			a: pipeline.Answers{Event: ev("e", 30),
				History: []event.ContextMessage{tm("h1", u, 20, 1), tm("h2", a, 21, 1)},
				Hits: []event.ContextMessage{hit(tm("p1", u, 1, 1), 3), hit(tm("p2", a, 2, 1), 2), hit(tm("p3", u, 3, 1), 1),
					hit(tm("p4", u, 4, 1), 0.5)},
				Following: map[string][]event.ContextMessage{"p1": {tm("p2", a, 2, 1)}, "p3": {tm("h1", u, 20, 1)}}},
			l:        with(limits, func(l *pipeline.Limits) { l.RelevanceLimit = 2 }),
			history:  []string{"h1", "h2"},
			relevant: []string{"p1", "p2<p1", "p3"},
			tokens:   event.Tokens{History: 2, Relevant: 3},
		},
		{
			name: "a hit with the words of a better hit or of recent history comes after every other hit; wordless texts never are copies",
			a: pipeline.Answers{Event: ev("e", 30),
				History: []event.ContextMessage{said("h1", u, 20, "Hi Tom! What's new?"), said("h2", a, 21, "All good.")},
				Hits: []event.ContextMessage{
					hit(said("p1", a, 1, "hi tom, what's new"), 5), // as h1
					hit(said("p2", u, 2, "Hey Tom!"), 4),
					hit(said("p3", u, 3, "hey... TOM"), 3), // as p2
					hit(said("p4", a, 4, "🎉"), 2.5),
					hit(said("p5", u, 5, "🎉"), 2.4),        // no words: not a copy
					hit(said("p6", u, 8, "all good"), 2.3), // as h2
					hit(said("p7", u, 9, "the answer"), 2)},
				Following: map[string][]event.ContextMessage{"p2": {said("r2", a, 6, "All good!")}}},
			l:        with(limits, func(l *pipeline.Limits) { l.RelevanceLimit = 6 }),
			history:  []string{"h1", "h2"},
			relevant: []string{"p2", "r2<p2", "p4", "p5", "p7", "p1", "p3"},
			tokens:   event.Tokens{History: 6, Relevant: 14},
		},
		{
			name: "HISTORY_LIMIT per role, newest kept; a message after the event is never given",
			a: pipeline.Answers{Event: ev("e", 30),
				History: []event.ContextMessage{tm("u1", u, 1, 1), tm("u2", u, 2, 1), tm("u3", u, 3, 1), tm("a1", a, 4, 1), tm("late", a, 31, 1)}},
			l:       with(limits, func(l *pipeline.Limits) { l.HistoryLimit = 2 }),
			history: []string{"u2", "u3", "a1"},
			tokens:  event.Tokens{History: 3},
		},
		{
			name: "muted: empty context, superseded_by still said",
			a: pipeline.Answers{Event: ev("e", 30), EventTokens: 2, Muted: true, History: old, Hits: old,
				Newer:      []event.Event{{EventID: "n1", ChatID: "c", Type: event.TypeMessage, Role: u, SentAt: at(31)}},
				References: []event.Reference{{Ref: "S00001", Kind: "sale_order", EventID: "o1", SentAt: at(0)}}},
			l:          limits,
			tokens:     event.Tokens{Event: 2},
			superseded: "n1",
		},
		{
			name: "superseded by the newest of a burst received after it; not past an assistant message or a gap",
			a: pipeline.Answers{Event: ev("e", 30), Newer: []event.Event{
				{EventID: "e", ChatID: "c", Type: event.TypeMessage, Role: u, SentAt: at(30)}, // delivered again
				{EventID: "other-chat", ChatID: "x", Type: event.TypeMessage, Role: u, SentAt: at(30)},
				{EventID: "n1", ChatID: "c", Type: event.TypeMessage, Role: u, SentAt: at(30).Add(30 * time.Second)},
				{EventID: "n2", ChatID: "c", Type: event.TypeMessage, Role: u, SentAt: at(31)},
				{EventID: "reply", ChatID: "c", Type: event.TypeMessage, Role: a, SentAt: at(31)},
				{EventID: "n3", ChatID: "c", Type: event.TypeMessage, Role: u, SentAt: at(31)},
			}},
			l:          limits,
			superseded: "n2",
		},
		{
			name: "references: newest mention first, once each, at most REFERENCES_LIMIT",
			a: pipeline.Answers{Event: ev("e", 30), References: []event.Reference{
				{Ref: "S00001", EventID: "m1", SentAt: at(1)}, {Ref: "S00002", EventID: "m5", SentAt: at(5)},
				{Ref: "S00001", EventID: "m9", SentAt: at(9)}, {Ref: "S00003", EventID: "e", SentAt: at(30)},
				{Ref: "S00004", EventID: "m0", SentAt: at(0)}}},
			l:          limits,
			references: []string{"S00003@e", "S00001@m9", "S00002@m5"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := pipeline.Assemble(tc.a, tc.l)
			if got := ids(c.History); !slices.Equal(got, orEmpty(tc.history)) {
				t.Errorf("history %v, want %v", got, tc.history)
			}
			var rel []string
			for _, m := range c.Relevant {
				switch {
				case m.With != "" && m.Score == nil:
					rel = append(rel, m.EventID+"<"+m.With)
				case m.With == "" && m.Score != nil:
					rel = append(rel, m.EventID)
				default:
					t.Errorf("relevant %s: score %v with %q, want exactly one", m.EventID, m.Score, m.With)
				}
			}
			if !slices.Equal(rel, tc.relevant) && (len(rel) > 0 || len(tc.relevant) > 0) {
				t.Errorf("relevant %v, want %v", rel, tc.relevant)
			}
			if !slices.Equal(c.Burst, orEmpty(tc.burst)) {
				t.Errorf("burst %v, want %v", c.Burst, tc.burst)
			}
			if c.Tokens != tc.tokens {
				t.Errorf("tokens %+v, want %+v", c.Tokens, tc.tokens)
			}
			if c.SupersededBy != tc.superseded {
				t.Errorf("superseded_by %q, want %q", c.SupersededBy, tc.superseded)
			}
			var refs []string
			for _, r := range c.References {
				refs = append(refs, r.Ref+"@"+r.EventID)
			}
			if !slices.Equal(refs, tc.references) {
				t.Errorf("references %v, want %v", refs, tc.references)
			}
			if c.History == nil || c.Relevant == nil || c.Burst == nil || c.References == nil {
				t.Error("a list is nil, not empty")
			}
			if tc.l.Budget > 0 && c.Tokens.History+c.Tokens.Relevant > tc.l.Budget && !tc.overBudgetOK {
				t.Errorf("tokens %+v over the budget %d", c.Tokens, tc.l.Budget)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestAssembleProperties: over random chats, texts (any Unicode, up to
// the contract's 16 KB) and settings, counted by the real tokenizer: the
// tokens are the sums of what was given, never above the budget unless the
// burst and the last exchange alone are (and then nothing else is given),
// no message twice, never the event, never a message after it, passages
// are a hit and then its neighbours, and the burst is in history.
func TestAssembleProperties(t *testing.T) {
	t.Parallel()
	counter, err := tokens.New(tokens.O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("abcdefgh ijk lmn opq rst uvw xyz ÄÖÜ éè ñ 你好 世界 🎉🍺 \n\t.,!?0123456789")
	text := func() string {
		n := r.IntN(60)
		if r.IntN(60) == 0 {
			n = 2000 + r.IntN(14000)
		}
		b := make([]rune, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		for len(s) > event.MaxTextBytes {
			s = s[:len(s)-1]
		}
		return strings.ToValidUTF8(s, "")
	}
	for i := range 150 {
		n := 1 + r.IntN(80)
		chat := make([]event.ContextMessage, n)
		minute := 0
		for j := range chat {
			role := u
			if r.IntN(2) == 0 {
				role = a
			}
			minute += r.IntN(5)
			chat[j] = event.ContextMessage{EventID: fmt.Sprintf("m%d", j), Role: role, Text: text(),
				SentAt: at(0).Add(time.Duration(minute) * time.Minute)}
			if r.IntN(2) == 0 { // the store knows some counts
				chat[j].Tokens = counter.Count(chat[j].Text)
			}
		}
		e := event.Event{EventID: chat[n-1].EventID, ChatID: "c", Type: event.TypeMessage, Role: u, Text: chat[n-1].Text,
			SentAt: chat[n-1].SentAt.Add(time.Duration(r.IntN(3)) * time.Minute)}
		var hits []event.ContextMessage
		following := map[string][]event.ContextMessage{}
		for _, j := range r.Perm(n)[:r.IntN(n+1)] {
			hits = append(hits, hit(chat[j], r.Float64()))
			following[chat[j].EventID] = chat[j+1 : min(n, j+1+r.IntN(3))]
		}
		l := pipeline.Limits{HistoryLimit: 1 + r.IntN(12), RelevanceLimit: r.IntN(25), Neighbours: r.IntN(3),
			Budget: []int{0, 50, 300, 1000, 2000, 4000}[r.IntN(6)], BurstGap: time.Duration(r.IntN(4)) * time.Minute,
			ReferencesLimit: 10, Count: counter.Count}
		c := pipeline.Assemble(pipeline.Answers{Event: e, History: chat[max(0, n-2*l.HistoryLimit-1):], Hits: hits, Following: following}, l)

		where := fmt.Sprintf("case %d (budget %d)", i, l.Budget)
		sum := func(ms []event.ContextMessage) int {
			s := 0
			for _, m := range ms {
				s += counter.Count(m.Text)
			}
			return s
		}
		if c.Tokens.History != sum(c.History) || c.Tokens.Relevant != sum(c.Relevant) {
			t.Fatalf("%s: tokens %+v, counted %d and %d", where, c.Tokens, sum(c.History), sum(c.Relevant))
		}
		seen := map[string]bool{e.EventID: true}
		for _, m := range slices.Concat(c.History, c.Relevant) {
			if seen[m.EventID] {
				t.Fatalf("%s: %s given twice or is the event", where, m.EventID)
			}
			if m.SentAt.After(e.SentAt) {
				t.Fatalf("%s: %s is after the event", where, m.EventID)
			}
			seen[m.EventID] = true
		}
		inHistory := map[string]bool{}
		for _, m := range c.History {
			inHistory[m.EventID] = true
		}
		always := 0
		for _, id := range c.Burst {
			if !inHistory[id] {
				t.Fatalf("%s: burst %s not in history", where, id)
			}
		}
		// The always-included: the burst and the last exchange.
		for _, m := range c.History {
			if slices.Contains(c.Burst, m.EventID) {
				always += counter.Count(m.Text)
			}
		}
		if l.Budget > 0 && c.Tokens.History+c.Tokens.Relevant > l.Budget {
			lastTwo := 0
			for _, m := range lastExchangeOf(c.History) {
				if !slices.Contains(c.Burst, m.EventID) {
					lastTwo += counter.Count(m.Text)
				}
			}
			if always+lastTwo != c.Tokens.History || c.Tokens.Relevant != 0 {
				t.Fatalf("%s: %+v over the budget with more than the burst and the last exchange (%d)", where, c.Tokens, always+lastTwo)
			}
		}
		hitOf := ""
		for _, m := range c.Relevant {
			if m.Score != nil {
				hitOf = m.EventID
				continue
			}
			if m.With == "" || m.With != hitOf {
				t.Fatalf("%s: neighbour %s with %q after hit %q", where, m.EventID, m.With, hitOf)
			}
		}
	}
}

// lastExchangeOf is the newest assistant message of history (oldest first)
// and the user message just before it.
func lastExchangeOf(history []event.ContextMessage) []event.ContextMessage {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Role == a {
			for j := i - 1; j >= 0; j-- {
				if history[j].Role == u {
					return []event.ContextMessage{history[i], history[j]}
				}
			}
			return history[i : i+1]
		}
	}
	return nil
}
