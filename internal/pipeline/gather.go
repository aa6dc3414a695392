package pipeline

import (
	"context"
	"errors"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/refs"
	"github.com/chatprep/chatprep/internal/tracing"
)

// gathered is what a user message's tasks answered: each step with its
// span and when its answer was seen, and the answers of those that
// succeeded. Each task function writes only its own field, read only after
// its task succeeded (see pool.Task.Err).
type gathered struct {
	history, relevance, references, muted, store *step // relevance and references nil when off

	recent    []event.ContextMessage
	hits      []event.ContextMessage
	following map[string][]event.ContextMessage
	refs      []event.Reference
	isMuted   bool
	// eventTokens is the event's text in tokens, counted once.
	eventTokens int
}

// retrievals are the steps whose failure only degrades the result.
func (g *gathered) retrievals() []*step {
	var out []*step
	for _, s := range []*step{g.history, g.relevance, g.references, g.muted} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// gather runs a user message's tasks on the pool, all at once, and returns
// when each has answered (the pool answers a task at the latest at its
// timeout or when its context is cancelled). A muted chat's retrievals are
// cancelled as soon as the muted state is known.
func (h *Handler) gather(ctx context.Context, ev event.Event) *gathered {
	ev.Tokens = h.tokens.Count(ev.Text) // once, for the result and the store
	retrieval, cancelRetrieval := context.WithCancel(ctx)
	defer cancelRetrieval()
	g := &gathered{eventTokens: ev.Tokens}
	lim := h.cfg.HistoryLimit
	// Both roles in one search: at most HistoryLimit each are used, and the
	// budget seldom has room for more than the newest few. One more than
	// both limits, so that dropping the event itself (which the store task
	// may already have written) still leaves them.
	historyDone := make(chan struct{}) // closed once g.recent is set (or the task failed)
	g.history = h.submit(retrieval, TaskMessageHistory, func(ctx context.Context) (err error) {
		defer close(historyDone)
		recent, err := h.store.Recent(ctx, ev.ChatID, ev.SentAt, 2*lim+1)
		g.recent = recent
		return err
	})
	if !h.cfg.NoRelevance {
		g.relevance = h.submit(retrieval, TaskRelevanceSearch, func(ctx context.Context) error {
			hits, err := h.store.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, Candidates(h.cfg.RelevanceLimit, lim))
			if err != nil {
				return err
			}
			var following map[string][]event.ContextMessage
			if !h.cfg.NoNeighbours && len(hits) > 0 {
				// Neighbours only for the hits that can be passages: not
				// those in history, when it is known by now (as a rule: the
				// history search is no slower than this one; never waited
				// for), RelevanceLimit at most.
				var recent []event.ContextMessage
				select {
				case <-historyDone:
					recent = g.recent
				default:
				}
				if following, err = h.store.Following(ctx, ev.ChatID, passageHits(hits, recent, ev, lim, h.cfg.RelevanceLimit), h.cfg.Neighbours); err != nil {
					return err
				}
			}
			g.hits, g.following = hits, following
			return nil
		})
	}
	if !h.cfg.NoReferences {
		g.references = h.submit(retrieval, TaskReferences, func(ctx context.Context) (err error) {
			g.refs, err = h.store.References(ctx, ev.ChatID, ev.SentAt, h.cfg.ReferencesLimit)
			return err
		})
	}
	var muted bool
	g.muted = h.submit(ctx, TaskMutedStatus, func(ctx context.Context) (err error) {
		muted, err = h.store.Muted(ctx, ev.ChatID, ev.SentAt)
		return err
	})
	g.store = h.submit(ctx, TaskStore, func(ctx context.Context) error {
		return h.store.Put(ctx, ev) // ev.Tokens counted by the caller
	})

	steps := append(g.retrievals(), g.store)
	for range steps {
		var s *step
		select {
		case <-g.history.pending():
			s = g.history
		case <-g.relevance.pending():
			s = g.relevance
		case <-g.references.pending():
			s = g.references
		case <-g.muted.pending():
			s = g.muted
			if g.muted.task.Err() == nil && muted {
				g.isMuted = true
				cancelRetrieval() // history, relevance and references are no longer needed
			}
		case <-g.store.pending():
			s = g.store
		}
		s.end = h.cfg.Now()
	}
	return g
}

// result is the result of ev from what its tasks answered: the route, the
// degraded tasks (each task's span ended with the same reason), and the
// context that Assemble chooses. behind, when set, lists the chat's
// messages already received after ev (handler.Message.Behind).
func (h *Handler) result(ctx context.Context, ev event.Event, g *gathered, behind func() []string) *event.Result {
	ev.Tokens = g.eventTokens
	res := &event.Result{EventID: ev.EventID, ChatID: ev.ChatID, Degraded: []event.Degradation{}, Worker: h.cfg.Worker}
	// degrade lists a failed task in degraded and ends its span with the
	// same reason; it tells whether the task succeeded.
	degrade := func(s *step) bool {
		if s == nil {
			return false
		}
		err := s.task.Err()
		reason := ""
		if err != nil {
			reason = h.describe(ev, s.name, err)
			res.Degraded = append(res.Degraded, event.Degradation{Task: s.name, Error: reason})
		}
		s.endSpan(s.end, reason)
		return err == nil
	}
	a := Answers{Event: ev, EventTokens: ev.Tokens, Muted: g.isMuted}
	historyOK := false
	if !g.isMuted {
		if historyOK = degrade(g.history); historyOK {
			a.History = g.recent
		}
		if degrade(g.relevance) {
			a.Hits, a.Following = g.hits, g.following
		}
		if g.references != nil {
			a.References = eventReferences(ev)
			if historyOK {
				a.References = append(a.References, historyReferences(g.recent, ev)...)
			}
			if degrade(g.references) {
				a.References = append(a.References, g.refs...)
			}
		}
	} else {
		// Not needed: cancelled, or answered before the muted state was.
		for _, s := range []*step{g.history, g.relevance, g.references} {
			if s == nil {
				continue
			}
			err := s.task.Err()
			if errors.Is(err, context.Canceled) {
				s.span.SetAttributes(tracing.Cancelled.Bool(true))
				err = nil
			}
			s.endSpan(s.end, errText(err))
		}
	}
	degrade(g.muted) // unknown muted state: handled as not muted
	if behind != nil {
		a.Newer = decodeAll(behind())
	}
	limits := Limits{
		HistoryLimit: h.cfg.HistoryLimit, RelevanceLimit: h.cfg.RelevanceLimit, Neighbours: h.cfg.Neighbours,
		Budget: h.cfg.Budget, BurstGap: h.cfg.BurstGap, ReferencesLimit: h.cfg.ReferencesLimit, Count: h.tokens.Count,
	}
	if h.cfg.NoRelevance {
		limits.RelevanceLimit = 0
	}
	if h.cfg.NoNeighbours {
		limits.Neighbours = 0
	}
	if h.cfg.NoBudget {
		limits.Budget = 0
	}
	if h.cfg.NoReferences {
		limits.ReferencesLimit = 0
	}
	if h.cfg.NoBursts {
		limits.BurstGap = 0
	}
	c := Assemble(a, limits)
	res.History, res.Relevant, res.Tokens = c.History, c.Relevant, c.Tokens
	res.Burst, res.SupersededBy, res.References = c.Burst, c.SupersededBy, c.References
	res.Muted = g.isMuted

	var carried []event.ContextMessage
	if historyOK {
		carried = g.recent
	}
	// Rules only, a few microseconds (see internal/route): on this
	// goroutine, with its own span.
	_, span := h.tracer.Start(ctx, TaskRoute)
	res.Route = h.route(ev, carried)
	span.End() // the route is the event span's attribute
	return res
}

// route is ev's route: a known route_hint; else the first rule its text
// matches; else, unless turned off, the rule-matched route of the newest
// user message in recent sent within RouteCarry before it (route carry);
// else the default.
func (h *Handler) route(ev event.Event, recent []event.ContextMessage) string {
	if name, ok := h.router.Hint(ev.RouteHint); ok {
		return name
	}
	if name, ok := h.router.Match(ev.Text); ok {
		return name
	}
	if !h.cfg.NoCarry {
		for i := len(recent) - 1; i >= 0; i-- { // newest first
			m := recent[i]
			if m.Role != event.RoleUser || m.EventID == ev.EventID || m.SentAt.After(ev.SentAt) {
				continue
			}
			if ev.SentAt.Sub(m.SentAt) > h.cfg.RouteCarry {
				break
			}
			if name, ok := h.router.Match(m.Text); ok {
				return name
			}
		}
	}
	return h.router.Default()
}

// passageHits are the hits that can be passages: not the event, not among
// the history candidates (the rule of Assemble's history), copies last
// (copiesLast, as Assemble orders them), at most limit. Which of them fit
// the budget is Assemble's to say; their neighbours are what Following is
// asked for.
func passageHits(hits, recent []event.ContextMessage, ev event.Event, historyLimit, limit int) []event.ContextMessage {
	recent = recentHistory(recent, ev, historyLimit)
	skip := make(map[string]bool, len(recent)+1)
	skip[ev.EventID] = true
	for _, m := range recent {
		skip[m.EventID] = true
	}
	var out []event.ContextMessage
	for _, h := range copiesLast(hits, recent, ev) {
		if len(out) == limit {
			break
		}
		if !skip[h.EventID] {
			out = append(out, h)
		}
	}
	return out
}

// eventReferences are the references of ev's own text.
func eventReferences(ev event.Event) []event.Reference {
	var out []event.Reference
	for _, r := range refs.Find(ev.Text) {
		out = append(out, event.Reference{Ref: r.Ref, Kind: r.Kind, EventID: ev.EventID, SentAt: ev.SentAt})
	}
	return out
}

// historyReferences are the references of the recent messages' texts,
// newest first: so that messages stored before the store kept references
// count too, within the history window.
func historyReferences(recent []event.ContextMessage, ev event.Event) []event.Reference {
	var out []event.Reference
	for i := len(recent) - 1; i >= 0; i-- {
		m := recent[i]
		if m.EventID == ev.EventID || m.SentAt.After(ev.SentAt) {
			continue
		}
		for _, r := range refs.Find(m.Text) {
			out = append(out, event.Reference{Ref: r.Ref, Kind: r.Kind, EventID: m.EventID, SentAt: m.SentAt})
		}
	}
	return out
}

// decodeAll decodes bodies into events, skipping those that are not valid
// (their own handling rejects them).
func decodeAll(bodies []string) []event.Event {
	var out []event.Event
	for _, b := range bodies {
		if ev, err := event.Decode([]byte(b)); err == nil {
			out = append(out, ev)
		}
	}
	return out
}
