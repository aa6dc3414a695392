package pipeline

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/panics"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/tracing"
)

// Store is what the pipeline needs of Weaviate (store.Store implements it).
// The messages it returns carry their Tokens when it knows them.
type Store interface {
	// Recent returns the newest `limit` messages of the chat, both roles, with sent_at <= before, oldest first.
	Recent(ctx context.Context, chatID string, before time.Time, limit int) ([]event.ContextMessage, error)
	// Relevant returns up to `limit` of the chat's messages with sent_at <= before most relevant to text (BM25, hybrid when vectors exist), best first, Score set.
	Relevant(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error)
	// Following returns, per hit's event id, up to n messages that follow the hit in the chat, in time order.
	Following(ctx context.Context, chatID string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error)
	// References returns the chat's ERP references in messages with sent_at <= before, newest mention first, one entry each, at most limit.
	References(ctx context.Context, chatID string, before time.Time, limit int) ([]event.Reference, error)
	// Muted tells whether the chat is muted at time at (a mute with Until in the past no longer counts).
	Muted(ctx context.Context, chatID string, at time.Time) (bool, error)
	// Put stores a message event idempotently (deterministic id from chat id and event id).
	Put(ctx context.Context, ev event.Event) error
	// SetMuted applies a mute or unmute event unless the chat has a newer
	// one: ev.SentAt orders them (zero: the time of the call).
	SetMuted(ctx context.Context, ev event.Event) error
}

// Publisher sends results (publish.Publisher implements it). Publish
// returns once the result is accepted (nil) or failed.
type Publisher interface {
	Publish(ctx context.Context, r *event.Result) error
}

// Pool runs tasks (pool.Pool implements it).
type Pool interface {
	Go(ctx context.Context, fn pool.Func) *pool.Task
}

// Router detects a message's route (route.Router implements it).
type Router interface {
	// Hint is the known route a route_hint names; false for none.
	Hint(hint string) (string, bool)
	// Match is the route of the first rule text matches; false for none.
	Match(text string) (string, bool)
	// Default is the route of a message that matches no rule.
	Default() string
}

// Counter counts a text's tokens (tokens.Counter implements it).
type Counter interface {
	Count(text string) int
}

// Metrics records the contract's metrics (metrics.Aggregator implements
// it). Its methods must not block.
type Metrics interface {
	Duration(name, route string, d time.Duration)
	Count(name, route string, n float64)
}

// Metric names of CONTRACT.md that the pipeline records (the metrics
// package exports the same values).
const (
	MetricMessageHistoryDuration  = "message_history_duration"
	MetricRelevanceSearchDuration = "relevance_search_duration"
	MetricPreprocessingDuration   = "preprocessing_duration"
	MetricHandlerTotalDuration    = "handler_total_duration"
	MetricMessagesProcessed       = "messages_processed"
	MetricMessagesDegraded        = "messages_degraded"
	MetricMessagesMuted           = "messages_muted"
)

// Task names, as listed in a result's degraded.
const (
	// TaskMessageHistory is the chat's recent messages, both roles, in one
	// search.
	TaskMessageHistory = "message_history"
	// TaskRelevanceSearch is the relevance search and its hits' neighbours.
	TaskRelevanceSearch = "relevance_search"
	// TaskReferences is the chat's ERP references.
	TaskReferences  = "references"
	TaskMutedStatus = "muted_status"
	// TaskResultSize names the trimming of a result too large for SQS:
	// context messages were dropped (relevant first, then the oldest
	// history) until it fit.
	TaskResultSize = "result_size"
)

// Names of the other tasks' spans (they are never degraded: a failed store
// fails the message).
const (
	TaskStore    = "store"
	TaskSetMuted = "set_muted"
	TaskRoute    = "route"
)

// Summaries of an event's log line.
const (
	// SummaryPreprocessed is the line of a user message whose result was
	// published.
	SummaryPreprocessed = "message preprocessed"
	// SummaryHandled is the line of any other event handled (assistant
	// message, mute, unmute).
	SummaryHandled = "event handled"
)

// Defaults of Config.
const (
	// DefaultHistoryLimit is HISTORY_LIMIT's default: messages per role.
	DefaultHistoryLimit = 10
	// DefaultRelevanceLimit is RELEVANCE_LIMIT's default: passages.
	DefaultRelevanceLimit = 20
	// DefaultNeighbours is RELEVANCE_NEIGHBOURS' default.
	DefaultNeighbours = 1
	// DefaultBudget is CONTEXT_TOKEN_BUDGET's default.
	DefaultBudget = 2000
	// DefaultBurstGap is BURST_GAP's default.
	DefaultBurstGap = 2 * time.Minute
	// DefaultRouteCarry is ROUTE_CARRY's default.
	DefaultRouteCarry = 30 * time.Minute
	// DefaultReferencesLimit is REFERENCES_LIMIT's default.
	DefaultReferencesLimit = 10
)

// Config configures a Handler.
type Config struct {
	// HistoryLimit is how many recent messages per role the history holds
	// (HISTORY_LIMIT). Default DefaultHistoryLimit.
	HistoryLimit int
	// RelevanceLimit is how many relevant messages a result holds
	// (RELEVANCE_LIMIT). Default DefaultRelevanceLimit.
	RelevanceLimit int
	// NoRelevance turns the relevance search off (RELEVANCE_LIMIT=0).
	NoRelevance bool
	// Neighbours is how many messages after a hit come with it
	// (RELEVANCE_NEIGHBOURS); NoNeighbours: none. Default DefaultNeighbours.
	Neighbours   int
	NoNeighbours bool
	// Budget is the tokens history and relevant may take together
	// (CONTEXT_TOKEN_BUDGET); NoBudget: only the limits. Default
	// DefaultBudget.
	Budget   int
	NoBudget bool
	// BurstGap (BURST_GAP): consecutive user messages closer than this are
	// one burst; NoBursts: none are. Default DefaultBurstGap.
	BurstGap time.Duration
	NoBursts bool
	// RouteCarry (ROUTE_CARRY): a message matching no route rule takes the
	// route of the chat's user messages of this long before it; NoCarry:
	// never. Default DefaultRouteCarry.
	RouteCarry time.Duration
	NoCarry    bool
	// ReferencesLimit is the most ERP references a result holds
	// (REFERENCES_LIMIT); NoReferences: none and no search. Default
	// DefaultReferencesLimit.
	ReferencesLimit int
	NoReferences    bool
	// Worker is the result's worker field. Default WorkerID().
	Worker string
	// Logger receives the log lines of what the handler handles itself (a
	// panic in a task). Each event's own line is written by the Log
	// middleware from what the handler describes. The zero Logger discards.
	Logger zerolog.Logger
	// Now tells the time. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.HistoryLimit = cmp.Or(c.HistoryLimit, DefaultHistoryLimit)
	c.RelevanceLimit = cmp.Or(c.RelevanceLimit, DefaultRelevanceLimit)
	c.Neighbours = cmp.Or(c.Neighbours, DefaultNeighbours)
	c.Budget = cmp.Or(c.Budget, DefaultBudget)
	c.BurstGap = cmp.Or(c.BurstGap, DefaultBurstGap)
	c.RouteCarry = cmp.Or(c.RouteCarry, DefaultRouteCarry)
	c.ReferencesLimit = cmp.Or(c.ReferencesLimit, DefaultReferencesLimit)
	if c.Worker == "" {
		c.Worker = WorkerID()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.HistoryLimit < 1 {
		errs = append(errs, fmt.Errorf("history limit %d: must be at least 1", c.HistoryLimit))
	}
	if c.RelevanceLimit < 1 {
		errs = append(errs, fmt.Errorf("relevance limit %d: must be at least 1 (NoRelevance turns the search off)", c.RelevanceLimit))
	}
	for _, p := range []struct {
		name string
		ok   bool
	}{
		{"neighbours", c.Neighbours > 0}, {"budget", c.Budget > 0}, {"burst gap", c.BurstGap > 0},
		{"route carry", c.RouteCarry > 0}, {"references limit", c.ReferencesLimit > 0},
	} {
		if !p.ok {
			errs = append(errs, fmt.Errorf("%s: must be positive (the No… fields turn it off)", p.name))
		}
	}
	return errors.Join(errs...)
}

// Deps are the Handler's collaborators.
type Deps struct {
	Store     Store     // required
	Publisher Publisher // required
	Pool      Pool      // required
	Router    Router    // required
	// Tokens counts the texts whose count the store did not give (and the
	// event's). Required.
	Tokens Counter
	// Metrics, when set, receives the contract's metrics.
	Metrics Metrics
	// Tracer, when set, makes a span per task under the event's span (see
	// internal/tracing); the handler also adds its attributes to the span
	// it finds in its context.
	Tracer trace.Tracer
}

// WorkerID is a worker id for results: the host name and four random hex
// digits, like "ip-10-0-1-5/3f2a".
func WorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return host + "/" + hex.EncodeToString(b[:])
}

// Handler handles chat events; it implements handler.Handler.
type Handler struct {
	cfg     Config
	store   Store
	pub     Publisher
	pool    Pool
	router  Router
	tokens  Counter
	metrics Metrics
	tracer  trace.Tracer
	log     zerolog.Logger
}

var _ handler.Handler = (*Handler)(nil)

// New returns a Handler (cfg filled with WithDefaults).
func New(cfg Config, d Deps) (*Handler, error) {
	cfg = cfg.WithDefaults()
	err := cfg.validate()
	for _, missing := range []struct {
		name string
		nil  bool
	}{{"store", d.Store == nil}, {"publisher", d.Publisher == nil}, {"pool", d.Pool == nil}, {"router", d.Router == nil}, {"tokens", d.Tokens == nil}} {
		if missing.nil {
			err = errors.Join(err, fmt.Errorf("%s: required", missing.name))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid pipeline configuration: %w", err)
	}
	h := &Handler{
		cfg:     cfg,
		store:   d.Store,
		pub:     d.Publisher,
		pool:    d.Pool,
		router:  d.Router,
		tokens:  d.Tokens,
		metrics: d.Metrics,
		tracer:  d.Tracer,
		log:     cfg.Logger,
	}
	if h.metrics == nil {
		h.metrics = noMetrics{}
	}
	if h.tracer == nil {
		h.tracer = noop.NewTracerProvider().Tracer("")
	}
	return h, nil
}

type noMetrics struct{}

func (noMetrics) Duration(string, string, time.Duration) {}
func (noMetrics) Count(string, string, float64)          {}

// Handle handles one message: nil when it is finished, a poison error
// (handler.Poison) for an invalid event, and otherwise the error of the step
// it could not be finished without (storing it, publishing its result),
// which says by itself whether it is transient.
func (h *Handler) Handle(ctx context.Context, m *handler.Message) error {
	received := m.ReceivedAt
	if received.IsZero() {
		received = h.cfg.Now()
	}
	ev, err := event.Decode([]byte(m.Body))
	if err != nil {
		code := event.CodeNotJSON
		var inv *event.Invalid
		if errors.As(err, &inv) {
			code = inv.Code
		}
		return handler.Poison(code, err)
	}
	handler.Describe(ctx, "", func(e *zerolog.Event) { e.Str("event_id", ev.EventID).Str("chat_id", ev.ChatID) })
	trace.SpanFromContext(ctx).SetAttributes(tracing.EventID.String(ev.EventID), tracing.ChatID.String(ev.ChatID),
		tracing.EventType.String(string(ev.Type)))
	switch {
	case ev.Type == event.TypeMessage && ev.Role == event.RoleUser:
		return h.userMessage(ctx, ev, received, m.Behind)
	case ev.Type == event.TypeMessage:
		return h.write(ctx, ev, received, h.store.Put)
	default:
		// Mutes and unmutes are ordered by their own time (the store keeps
		// the newest): sent_at, else when SQS first received the event.
		if ev.SentAt.IsZero() {
			ev.SentAt = m.FirstSentAt
		}
		return h.write(ctx, ev, received, h.store.SetMuted)
	}
}

// write stores an assistant message or applies a mute/unmute, on the pool
// (for its timeout and panic safety). There is no result.
func (h *Handler) write(ctx context.Context, ev event.Event, received time.Time, fn func(context.Context, event.Event) error) error {
	start := h.cfg.Now()
	name := TaskStore
	if ev.Type != event.TypeMessage {
		name = TaskSetMuted
	}
	s := h.submit(ctx, name, func(ctx context.Context) error { return fn(ctx, ev) })
	<-s.task.Done() // the pool answers at the latest when ctx ends or the task times out
	end := h.cfg.Now()
	if err := s.task.Err(); err != nil {
		err = taskFailed(err, "%s of event %s of chat %s", ev.Type, ev.EventID, ev.ChatID)
		s.endSpan(end, err.Error())
		return err
	}
	s.endSpan(end, "")
	timings := event.Timings{Store: ms(end.Sub(start)), Total: ms(end.Sub(received))}
	handler.Describe(ctx, SummaryHandled, func(e *zerolog.Event) {
		e.Str("type", string(ev.Type))
		switch ev.Type {
		case event.TypeMessage:
			e.Str("role", string(ev.Role))
		case event.TypeMute:
			e.Bool("muted", true)
		case event.TypeUnmute:
			e.Bool("muted", false)
		}
		e.Dict("timings_ms", timingsDict(timings))
	})
	return nil
}

// step is one submitted task, its span, and when its answer was seen.
type step struct {
	name string
	task *pool.Task
	span trace.Span
	end  time.Time
}

// submit starts the task's span under ctx's and submits fn to the pool
// with it: the span, like the result's timings, counts from here.
func (h *Handler) submit(ctx context.Context, name string, fn pool.Func) *step {
	ctx, span := h.tracer.Start(ctx, name)
	return &step{name: name, task: h.pool.Go(ctx, fn), span: span}
}

// endSpan ends the step's span at its answer: status error with reason
// when reason is not empty.
func (s *step) endSpan(end time.Time, reason string) {
	if reason != "" {
		s.span.SetStatus(codes.Error, reason)
	}
	s.span.End(trace.WithTimestamp(end))
}

func (s *step) pending() <-chan struct{} {
	if s == nil || !s.end.IsZero() {
		return nil
	}
	return s.task.Done()
}

func (h *Handler) userMessage(ctx context.Context, ev event.Event, received time.Time, behind func() []string) error {
	start := h.cfg.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // nothing the handler started outlives it
	g := h.gather(ctx, ev)
	if err := g.store.task.Err(); err != nil {
		err = taskFailed(err, "store message %s of chat %s", ev.EventID, ev.ChatID)
		g.store.endSpan(g.store.end, err.Error())
		for _, s := range g.retrievals() {
			s.endSpan(s.end, errText(s.task.Err()))
		}
		return err
	}
	g.store.endSpan(g.store.end, "")

	res := h.result(ctx, ev, g, behind)
	historyEnd := g.history.end
	res.TimingsMS = event.Timings{
		MessageHistory: ms(historyEnd.Sub(start)),
		MutedStatus:    ms(g.muted.end.Sub(start)),
		Store:          ms(g.store.end.Sub(start)),
	}
	if g.relevance != nil {
		res.TimingsMS.RelevanceSearch = ms(g.relevance.end.Sub(start))
	}
	now := h.cfg.Now()
	res.TimingsMS.Preprocessing = ms(now.Sub(start))
	res.TimingsMS.Total = ms(now.Sub(received))
	res.ProcessedAt = now.UTC()

	err := h.publish(ctx, res)
	trace.SpanFromContext(ctx).SetAttributes(tracing.Route.String(res.Route), tracing.Muted.Bool(res.Muted),
		tracing.Degraded.Int(len(res.Degraded)))
	if err != nil {
		return err
	}
	end := h.cfg.Now()
	h.record(res, start, now, end, received, historyEnd, g.relevance)
	if r := handler.ReportFrom(ctx); r != nil {
		r.Done = end // duration_ms is handler_total_duration
	}
	handler.Describe(ctx, SummaryPreprocessed, func(e *zerolog.Event) {
		e.Str("route", res.Route).Bool("muted", res.Muted).Int("degraded", len(res.Degraded))
		if len(res.Degraded) > 0 {
			names := make([]string, len(res.Degraded))
			for i, d := range res.Degraded {
				names[i] = d.Task
			}
			e.Strs("degraded_tasks", names)
		}
		if res.SupersededBy != "" {
			e.Str("superseded_by", res.SupersededBy)
		}
		e.Int("burst", len(res.Burst)).Int("tokens", res.Tokens.History+res.Tokens.Relevant)
		e.Dict("timings_ms", timingsDict(res.TimingsMS))
	})
	return nil
}

// record sends a published result's metrics.
func (h *Handler) record(res *event.Result, start, combined, end, received, historyEnd time.Time, relevance *step) {
	if !res.Muted {
		h.metrics.Duration(MetricMessageHistoryDuration, res.Route, historyEnd.Sub(start))
		if relevance != nil {
			h.metrics.Duration(MetricRelevanceSearchDuration, res.Route, relevance.end.Sub(start))
		}
	} else {
		h.metrics.Count(MetricMessagesMuted, "", 1)
	}
	h.metrics.Duration(MetricPreprocessingDuration, res.Route, combined.Sub(start))
	h.metrics.Duration(MetricHandlerTotalDuration, res.Route, end.Sub(received))
	h.metrics.Count(MetricMessagesProcessed, res.Route, 1)
	if len(res.Degraded) > 0 {
		h.metrics.Count(MetricMessagesDegraded, res.Route, 1)
	}
}

// publish hands the result to the publisher. A result too large for SQS is
// trimmed (relevant first, then the oldest history) until it fits, and the
// trimming is listed in degraded.
func (h *Handler) publish(ctx context.Context, res *event.Result) error {
	dropped := 0
	for {
		err := h.pub.Publish(ctx, res)
		var tooLarge interface{ TooLarge() bool }
		if !errors.As(err, &tooLarge) || !tooLarge.TooLarge() || len(res.History)+len(res.Relevant) == 0 {
			return err // the publisher's error says what was being done
		}
		if dropped == 0 {
			res.Degraded = append(res.Degraded, event.Degradation{Task: TaskResultSize})
		}
		// tokens keep saying what is given (the messages carry their counts).
		if n := len(res.Relevant); n > 0 {
			res.Tokens.Relevant -= res.Relevant[n-1].Tokens
			res.Relevant = res.Relevant[:n-1]
		} else {
			res.Tokens.History -= res.History[0].Tokens
			res.History = res.History[1:]
		}
		dropped++
		res.Degraded[len(res.Degraded)-1].Error = fmt.Sprintf("dropped %d context messages to fit the SQS message size limit", dropped)
	}
}

// taskFailed is the error of a task the message cannot be finished
// without. The store's own errors already say what was being done; the
// pool's (a timeout, the pool closed, a panic) do not, so they get what.
func taskFailed(err error, what string, args ...any) error {
	var te *pool.TimeoutError
	var pe *panics.Error
	if errors.As(err, &te) || errors.As(err, &pe) || errors.Is(err, pool.ErrClosed) || errors.Is(err, context.Canceled) {
		return fmt.Errorf(what+": %w", append(args, err)...)
	}
	return err
}

// describe is a failed task's error as shown in degraded. A panic is also
// logged here, with its stack, since it is handled (degraded) and not
// returned.
func (h *Handler) describe(ev event.Event, task string, err error) string {
	var te *pool.TimeoutError
	var pe *panics.Error
	switch {
	case errors.As(err, &te):
		return te.Error()
	case errors.As(err, &pe):
		h.log.Error().Str("event_id", ev.EventID).Str("chat_id", ev.ChatID).Str("task", task).
			Str("panic", fmt.Sprint(pe.Value)).Str("stack", string(pe.Stack)).Msg("preprocessing task panicked")
		return pe.Short()
	}
	return err.Error()
}

// errText is err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func timingsDict(t event.Timings) *zerolog.Event {
	return zerolog.Dict().
		Float64("message_history", t.MessageHistory).
		Float64("relevance_search", t.RelevanceSearch).
		Float64("muted_status", t.MutedStatus).
		Float64("store", t.Store).
		Float64("preprocessing", t.Preprocessing).
		Float64("total", t.Total)
}
