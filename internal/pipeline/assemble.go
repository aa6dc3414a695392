package pipeline

import (
	"slices"
	"time"
	"unicode"

	"github.com/chatprep/chatprep/internal/event"
)

// Answers are what a user message's tasks found: the input of Assemble.
// Nothing in it needs a pool, a store or a clock.
type Answers struct {
	// Event is the user message the result is for.
	Event event.Event
	// EventTokens is the length of the event's text in tokens.
	EventTokens int
	// Muted: the chat is muted; the context stays empty.
	Muted bool
	// History is the chat's recent messages, both roles, in any order (at
	// most Limits.HistoryLimit per role are used); it may hold the event
	// itself, which is never given.
	History []event.ContextMessage
	// Hits are the relevance search's messages, best first, each with its
	// Score; they may hold the event itself and history messages.
	Hits []event.ContextMessage
	// Following holds, per hit's event id, the messages that follow the hit
	// in the chat, in time order (RELEVANCE_NEIGHBOURS of them at most).
	Following map[string][]event.ContextMessage
	// References are the chat's ERP references, from any source (the
	// event's text, the history's, the store's) in any order; a reference
	// may repeat (all but its newest mention are dropped).
	References []event.Reference
	// Newer are the messages of the chat already received after the event,
	// in the order they will be handled (for SupersededBy).
	Newer []event.Event
}

// Limits are the result's limits (the configuration's).
type Limits struct {
	HistoryLimit    int           // at most this many history messages per role
	RelevanceLimit  int           // at most this many passages; 0: none
	Neighbours      int           // messages after a hit that come with it
	Budget          int           // tokens for history and relevant together; 0: no budget
	BurstGap        time.Duration // consecutive user messages closer than this are one burst; 0: no bursts
	ReferencesLimit int           // at most this many references; 0: none
	// RecentShare is the part of the budget that the most recent history
	// gets before any passage; passages then fill what is left, and more
	// history after them. Zero: DefaultRecentShare.
	RecentShare float64
	// Count counts the tokens of a text whose count is not known yet
	// (ContextMessage.Tokens 0 with a text). Nil: such texts count one token
	// per byte, which never undercounts.
	Count func(string) int
}

// DefaultRecentShare is Limits.RecentShare's default, chosen on the labelled
// corpus (bench/corpus): see the README's "What goes into the context".
const DefaultRecentShare = 0.1

// Candidates is how many hits the relevance search asks for, so that those
// already in history (up to 2 × historyLimit), those repeating the words of
// a message given before them (see sameWords) and those over the budget
// still leave relevanceLimit passages: 2 × (relevanceLimit + historyLimit),
// 60 at the defaults. Measured on the labelled corpus (the README's "What
// goes into the context"): with 41 (one per history message and passage),
// a long chat's copies of a greeting left fewer passages; more than 60
// added nothing.
func Candidates(relevanceLimit, historyLimit int) int {
	return 2 * (max(relevanceLimit, 0) + max(historyLimit, 0))
}

// Context is what Assemble chose: the result's context fields.
type Context struct {
	History      []event.ContextMessage // oldest first
	Relevant     []event.ContextMessage // passages, best first
	Tokens       event.Tokens
	Burst        []string
	SupersededBy string
	References   []event.Reference
}

// Assemble chooses a user message's context from its tasks' answers, as
// CONTRACT.md says, and decides nothing else (route, degraded and timings
// are the handler's):
//
//  1. Always in history, whatever the budget: the event's burst (the chat's
//     user messages just before it, each less than BurstGap after the one
//     before, with no assistant message between) and the last exchange (the
//     newest assistant message and the user message just before it).
//  2. Then, newest first, recent history until RecentShare of the budget
//     is used; a message that does not fit ends this step (history stays
//     one recent stretch).
//  3. Then passages, best first, copies last (see copiesLast): a hit not
//     yet given, with each of its following messages not yet given, each
//     message only if it fits; at most RelevanceLimit hits.
//  4. Then more recent history, newest first, while it fits.
//
// No message is cut, none appears twice, the event itself never appears.
// Tokens are the sums of what was given; history and relevant exceed the
// budget only when step 1 alone does, and then hold nothing more.
func Assemble(a Answers, l Limits) Context {
	c := Context{
		History:    []event.ContextMessage{},
		Relevant:   []event.ContextMessage{},
		Burst:      []string{},
		References: []event.Reference{},
		Tokens:     event.Tokens{Event: a.EventTokens},
	}
	c.SupersededBy = supersededBy(a.Event, a.Newer, l.BurstGap)
	if a.Muted {
		return c
	}
	c.References = references(a.References, l.ReferencesLimit)

	count := func(m *event.ContextMessage) int {
		switch {
		case m.Tokens > 0 || m.Text == "":
			return m.Tokens
		case l.Count != nil:
			return l.Count(m.Text)
		}
		return len(m.Text)
	}
	budget := l.Budget
	if budget <= 0 {
		budget = int(^uint(0) >> 1) // no budget
	}
	used := 0
	given := map[string]bool{a.Event.EventID: true}
	recent := recentHistory(a.History, a.Event, l.HistoryLimit) // newest first
	var history []event.ContextMessage
	take := func(m event.ContextMessage) {
		m.Tokens = count(&m)
		given[m.EventID] = true
		history = append(history, m)
		used += m.Tokens
		c.Tokens.History += m.Tokens
	}

	// 1. The burst and the last exchange.
	burst := burstOf(a.Event, recent, l.BurstGap)
	for _, m := range burst {
		take(m)
		c.Burst = append(c.Burst, m.EventID)
	}
	slices.Reverse(c.Burst) // oldest first
	for _, m := range lastExchange(recent) {
		if !given[m.EventID] {
			take(m)
		}
	}

	// 2. Recent history up to its share.
	share := l.RecentShare
	if share == 0 {
		share = DefaultRecentShare
	}
	reserve := budget
	if l.Budget > 0 {
		reserve = int(float64(l.Budget) * share)
	}
	next := 0 // recent[next:] not considered yet
	// moreHistory takes recent messages, newest first, until one would
	// take the total past limit: history stays one recent stretch.
	moreHistory := func(limit int) {
		for ; next < len(recent); next++ {
			m := recent[next]
			if given[m.EventID] {
				continue
			}
			if used+count(&m) > limit {
				return
			}
			take(m)
		}
	}
	moreHistory(reserve)

	// 3. Passages.
	passages := 0
	for _, hit := range copiesLast(a.Hits, recent, a.Event) {
		if passages >= l.RelevanceLimit {
			break
		}
		if given[hit.EventID] {
			continue
		}
		n := count(&hit)
		if used+n > budget {
			continue // a smaller passage further down may still fit
		}
		hit.Tokens, hit.With = n, ""
		given[hit.EventID] = true
		used += n
		c.Tokens.Relevant += n
		c.Relevant = append(c.Relevant, hit)
		passages++
		following := a.Following[hit.EventID]
		for _, f := range following[:min(len(following), l.Neighbours)] {
			if given[f.EventID] || f.SentAt.After(a.Event.SentAt) {
				continue
			}
			fn := count(&f)
			if used+fn > budget {
				break // a passage stays one stretch of the chat
			}
			f.Tokens, f.Score, f.With = fn, nil, hit.EventID
			given[f.EventID] = true
			used += fn
			c.Tokens.Relevant += fn
			c.Relevant = append(c.Relevant, f)
		}
	}

	// 4. More history, while it fits.
	moreHistory(budget)

	// Oldest first: recent's order reversed.
	rank := make(map[string]int, len(recent))
	for i, m := range recent {
		rank[m.EventID] = i
	}
	slices.SortFunc(history, func(x, y event.ContextMessage) int { return rank[y.EventID] - rank[x.EventID] })
	c.History = append(c.History, history...)
	return c
}

// copiesLast is hits with those that repeat the words of a better hit, of
// the event or of a recent history message (the candidates of history,
// given or not) moved after all the others, each part in its order. In a
// long chat the same greeting, "thanks" or "what's new?" comes back again
// and again, and when its words match a question (a name, "what") every
// copy is a hit: a copy tells the next stage nothing the first did not,
// and takes a passage from a message that may. Last, not dropped: when
// there is room, a copy's reply may still be worth giving.
func copiesLast(hits, recent []event.ContextMessage, ev event.Event) []event.ContextMessage {
	said := sameWords{}
	said.add(ev.Text)
	for _, m := range recent {
		said.add(m.Text)
	}
	out := make([]event.ContextMessage, 0, len(hits))
	var copies []event.ContextMessage
	for _, h := range hits {
		if said.has(h.Text) {
			copies = append(copies, h)
			continue
		}
		said.add(h.Text)
		out = append(out, h)
	}
	return append(out, copies...)
}

// sameWords is a set of texts by their words, lowercased (split as
// terms.Words splits: punctuation and case aside): "Hi Tom!" and "hi tom"
// are the same. A text without a word (only emoji or punctuation) is never
// in it. Texts are kept as a 64-bit hash of their words, computed without
// allocating: an event compares some eighty texts, twice.
type sameWords map[uint64]bool

// key is the FNV-1a hash of text's lowercased words, each followed by a
// separator; ok is false for a text without a word.
func (sameWords) key(text string) (h uint64, ok bool) {
	const offset, prime = 14695981039346656037, 1099511628211
	h = offset
	inWord := false
	for _, r := range text { // invalid bytes decode as U+FFFD, not a letter: a separator, as in terms.Words
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			h = (h ^ uint64(unicode.ToLower(r))) * prime
			inWord, ok = true, true
			continue
		}
		if inWord {
			h = (h ^ ' ') * prime
			inWord = false
		}
	}
	if inWord {
		h = (h ^ ' ') * prime
	}
	return h, ok
}

func (s sameWords) add(text string) {
	if k, ok := s.key(text); ok {
		s[k] = true
	}
}

func (s sameWords) has(text string) bool {
	k, ok := s.key(text)
	return ok && s[k]
}

// roleOrder puts the user's message before the assistant's at equal times.
func roleOrder(r event.Role) int {
	if r == event.RoleAssistant {
		return 1
	}
	return 0
}

// recentHistory is history without the event itself and messages sent
// after it: the newest 2×limit, at most limit of each role, newest first.
// (The store is asked for one more, in case the event itself is among
// them; cutting to 2×limit first makes the answer the same whether it was
// or not.)
func recentHistory(history []event.ContextMessage, ev event.Event, limit int) []event.ContextMessage {
	out := make([]event.ContextMessage, 0, len(history))
	for i := len(history) - 1; i >= 0; i-- { // at equal times the later given is the newer
		if m := history[i]; m.EventID != ev.EventID && !m.SentAt.After(ev.SentAt) {
			out = append(out, m)
		}
	}
	// Newest first; at equal times the assistant's (written after the user's) first.
	slices.SortStableFunc(out, func(x, y event.ContextMessage) int {
		if d := y.SentAt.Compare(x.SentAt); d != 0 {
			return d
		}
		return roleOrder(y.Role) - roleOrder(x.Role)
	})
	if limit <= 0 {
		return out
	}
	out = out[:min(len(out), 2*limit)]
	users, assistants := 0, 0
	kept := out[:0]
	for _, m := range out {
		n := &users
		if m.Role == event.RoleAssistant {
			n = &assistants
		}
		if *n < limit {
			*n++
			kept = append(kept, m)
		}
	}
	return kept
}

// burstOf is the event's burst in recent (newest first): the user messages
// right before it, each less than gap before the next, no assistant message
// between; newest first.
func burstOf(ev event.Event, recent []event.ContextMessage, gap time.Duration) []event.ContextMessage {
	if gap <= 0 {
		return nil
	}
	var out []event.ContextMessage
	prev := ev.SentAt
	for _, m := range recent {
		if m.Role != event.RoleUser || prev.Sub(m.SentAt) >= gap {
			break
		}
		out = append(out, m)
		prev = m.SentAt
	}
	return out
}

// lastExchange is the newest assistant message in recent (newest first) and
// the user message just before it: none, one or two messages.
func lastExchange(recent []event.ContextMessage) []event.ContextMessage {
	for i, m := range recent {
		if m.Role != event.RoleAssistant {
			continue
		}
		for _, u := range recent[i+1:] {
			if u.Role == event.RoleUser {
				return []event.ContextMessage{m, u}
			}
		}
		return []event.ContextMessage{m}
	}
	return nil
}

// supersededBy is the newest of the messages received after ev whose burst
// holds ev: the user messages that follow ev one after the other, each less
// than gap after the one before, until an assistant message or a longer gap.
// Messages of other chats are skipped.
func supersededBy(ev event.Event, newer []event.Event, gap time.Duration) string {
	if gap <= 0 {
		return ""
	}
	last, prev := "", ev.SentAt
	for _, n := range newer {
		if n.ChatID != ev.ChatID || n.Type != event.TypeMessage || n.EventID == ev.EventID {
			continue // another chat's, not a message, or this event delivered again
		}
		if n.Role != event.RoleUser || n.SentAt.Sub(prev) >= gap || n.SentAt.Before(prev) {
			break
		}
		last, prev = n.EventID, n.SentAt
	}
	return last
}

// references keeps the newest mention of each reference, newest first, at
// most limit.
func references(refs []event.Reference, limit int) []event.Reference {
	out := []event.Reference{}
	seen := map[string]bool{}
	refs = slices.Clone(refs)
	slices.SortStableFunc(refs, func(a, b event.Reference) int { return b.SentAt.Compare(a.SentAt) })
	for _, r := range refs {
		if len(out) >= limit {
			break
		}
		if !seen[r.Ref] {
			seen[r.Ref] = true
			out = append(out, r)
		}
	}
	return out
}
