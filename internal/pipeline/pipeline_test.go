package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/breaker"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/middleware"
	"github.com/chatprep/chatprep/internal/panics"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/sqsbatch"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/tracing"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// bundle is one test's handler and its fakes.
type bundle struct {
	h       *pipeline.Handler
	chain   handler.Handler // h as the worker runs it: with its log line, panics recovered
	pool    *pool.Pool
	store   *fakeStore
	pub     *fakePublisher
	metrics *fakeMetrics
	logs    *syncBuffer
}

type options struct {
	cfg         pipeline.Config
	taskTimeout time.Duration
	tracer      trace.Tracer // set: the chain starts with the event span
}

func setup(t testing.TB, o options) bundle {
	t.Helper()
	p, err := pool.New(pool.Config{Size: 8, TaskTimeout: cmpOr(o.taskTimeout, 2*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	b := bundle{pool: p, store: &fakeStore{}, pub: &fakePublisher{}, metrics: &fakeMetrics{}, logs: &syncBuffer{}}
	cfg := o.cfg
	cfg.Logger = zerolog.New(b.logs).Level(zerolog.InfoLevel)
	if cfg.Worker == "" {
		cfg.Worker = "test-worker"
	}
	b.h, err = pipeline.New(cfg, pipeline.Deps{
		Store: b.store, Publisher: b.pub, Pool: p, Router: route.Builtin(), Tokens: wordCounter{}, Metrics: b.metrics, Tracer: o.tracer,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.chain = handler.Chain(b.h, middleware.Log(cfg.Logger, nil), middleware.Recover())
	if o.tracer != nil {
		b.chain = tracing.Middleware(o.tracer, "in.fifo")(b.chain)
	}
	return b
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (b bundle) handle(t testing.TB, body string) error {
	t.Helper()
	return b.chain.Handle(context.Background(), &handler.Message{ID: "m-1", Body: body, ReceiveCount: 1, ReceivedAt: time.Now()})
}

func (b bundle) onlyResult(t *testing.T) event.Result {
	t.Helper()
	got := b.pub.published()
	if len(got) != 1 {
		t.Fatalf("%d results published, want 1", len(got))
	}
	return got[0]
}

func ids(msgs []event.ContextMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.EventID
	}
	return out
}

// TestCombineRules: history is the newest 2×HISTORY_LIMIT messages oldest
// first without the event itself, at most HISTORY_LIMIT per role; relevant keeps the
// store's order, without the event or anything in history, RELEVANCE_LIMIT
// passages in all. The store is asked for enough extra to filter
// (pipeline.Candidates).
func TestCombineRules(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: pipeline.Config{HistoryLimit: 3, RelevanceLimit: 2, NoNeighbours: true}})
	var asked atomic.Int64
	b.store.RecentFunc = func(_ context.Context, chat string, before time.Time, limit int) ([]event.ContextMessage, error) {
		if chat != "c-1" || !before.Equal(at(30)) || limit != 7 {
			t.Errorf("Recent(%s, %v, %d): want c-1, sent_at and 2*HISTORY_LIMIT+1", chat, before, limit)
		}
		asked.Add(1)
		// The event itself is already stored and is the newest.
		return []event.ContextMessage{msg("u1", event.RoleUser, 1), msg("a1", event.RoleAssistant, 2), msg("u2", event.RoleUser, 5),
			msg("a2", event.RoleAssistant, 6), msg("u3", event.RoleUser, 9), msg("a3", event.RoleAssistant, 10),
			msg("a4", event.RoleAssistant, 12), msg("e-9", event.RoleUser, 30)}, nil
	}
	b.store.RelevantFunc = func(_ context.Context, chat, text string, before time.Time, limit int) ([]event.ContextMessage, error) {
		if text != "where is my invoice?" || limit != 2*(2+3) || !before.Equal(at(30)) {
			t.Errorf("Relevant(%q, %v, %d): want the text, sent_at and 2*(RELEVANCE_LIMIT+HISTORY_LIMIT)", text, before, limit)
		}
		score := 0.9
		r := func(id string, role event.Role, minute int) event.ContextMessage {
			m := msg(id, role, minute)
			s := score
			m.Score = &s
			score -= 0.1
			return m
		}
		return []event.ContextMessage{r("e-9", event.RoleUser, 30), r("u2", event.RoleUser, 5), r("old1", event.RoleUser, 0),
			r("a1", event.RoleAssistant, 2), r("old2", event.RoleAssistant, 0), r("old3", event.RoleUser, 0)}, nil
	}
	if err := b.handle(t, userEvent("e-9", "c-1", "where is my invoice?")); err != nil {
		t.Fatal(err)
	}
	res := b.onlyResult(t)
	// The newest 6 before the event, at most 3 per role: a1 is a fourth
	// assistant message, u1 not among the newest 6.
	if got, want := ids(res.History), []string{"u2", "a2", "u3", "a3", "a4"}; !slices.Equal(got, want) {
		t.Errorf("history %v, want %v (the newest 2×3, 3 per role at most, oldest first, not the event)", got, want)
	}
	// a1 is older than the assistant history kept, so it may be relevant.
	if got, want := ids(res.Relevant), []string{"old1", "a1"}; !slices.Equal(got, want) {
		t.Errorf("relevant %v, want %v (best first, not in history, not the event)", got, want)
	}
	if res.Relevant[0].Score == nil || *res.Relevant[0].Score < *res.Relevant[1].Score {
		t.Error("relevant lost its scores or order")
	}
	if res.EventID != "e-9" || res.ChatID != "c-1" || res.Route != route.OdooERP || res.Muted || res.Worker != "test-worker" ||
		len(res.Degraded) != 0 || res.ProcessedAt.IsZero() {
		t.Errorf("result %+v", res)
	}
	if asked.Load() != 1 || b.store.called("Put") != 1 || b.store.called("Muted") != 1 || b.store.called("Following") != 0 {
		t.Errorf("store calls %v", b.store.calls)
	}
}

// TestEmptyPartsAreArraysNotNull: with nothing to give, every list is [].
func TestEmptyPartsAreArraysNotNull(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err != nil {
		t.Fatal(err)
	}
	body := b.pub.bodies[0]
	if strings.Contains(body, "superseded_by") {
		t.Errorf("body %s has superseded_by without a newer message", body)
	}
	for _, want := range []string{`"history":[]`, `"relevant":[]`, `"degraded":[]`, `"route":"general"`, `"timings_ms":{`,
		`"burst":[]`, `"references":[]`, `"tokens":{"history":0,"relevant":0,"event":1}`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
}

// blockUntilCancelled is a store call that only ends with its context and
// reports how it ended.
func blockUntilCancelled[T any](ended chan<- error) func(ctx context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		var zero T
		return zero, fmt.Errorf("weaviate query: %w", ctx.Err())
	}
}

// TestMutedChatCancelsRetrieval: once the chat is known to be muted, the
// history and relevance calls are cancelled, the result is muted with
// empty parts and no degradation, and the message is still stored.
func TestMutedChatCancelsRetrieval(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ended := make(chan error, 3)
	b.store.RecentFunc = func(ctx context.Context, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
		return blockUntilCancelled[[]event.ContextMessage](ended)(ctx)
	}
	b.store.ReferencesFunc = func(ctx context.Context, _ string, _ time.Time, _ int) ([]event.Reference, error) {
		return blockUntilCancelled[[]event.Reference](ended)(ctx)
	}
	b.store.RelevantFunc = func(ctx context.Context, _, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
		return blockUntilCancelled[[]event.ContextMessage](ended)(ctx)
	}
	b.store.MutedFunc = func(context.Context, string, time.Time) (bool, error) { return true, nil }
	if err := b.handle(t, userEvent("e-1", "c-1", "where is my order?")); err != nil {
		t.Fatal(err)
	}
	// A retrieval task may have been cancelled before a worker started it
	// (then it never runs); every call that did start was cancelled.
	if err := b.pool.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(ended)
	n := 0
	for err := range ended {
		n++
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a retrieval call ended with %v, want cancelled", err)
		}
	}
	if started := b.store.called("Recent") + b.store.called("Relevant") + b.store.called("References"); started != n {
		t.Errorf("%d retrieval calls started, %d ended", started, n)
	}
	res := b.onlyResult(t)
	if !res.Muted || len(res.History) != 0 || len(res.Relevant) != 0 || len(res.Degraded) != 0 || len(res.References) != 0 ||
		res.Tokens.History+res.Tokens.Relevant != 0 || res.Tokens.Event != 4 {
		t.Errorf("muted result %+v", res)
	}
	if b.store.called("Put") != 1 {
		t.Error("a muted chat's message must still be stored")
	}
	if got := b.metrics.get(pipeline.MetricMessagesMuted, ""); len(got) != 1 {
		t.Errorf("messages_muted %v", got)
	}
	if got := b.metrics.get(pipeline.MetricMessageHistoryDuration, route.OdooERP); len(got) != 0 {
		t.Errorf("history duration recorded for cancelled history: %v", got)
	}
}

// TestDegradedTasks: each retrieval task that fails or times out is listed
// with its error, its part stays empty, and the result is still published.
func TestDegradedTasks(t *testing.T) {
	t.Parallel()
	// In virtual time: only the task that waits for its context times out,
	// however late a loaded machine runs the others (they return at once).
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, options{taskTimeout: 50 * time.Millisecond})
		b.store.RecentFunc = func(ctx context.Context, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
			<-ctx.Done() // times out
			return nil, ctx.Err()
		}
		b.store.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
			return []event.ContextMessage{msg("r1", event.RoleUser, 1)}, nil
		}
		b.store.FollowingFunc = func(context.Context, string, []event.ContextMessage, int) (map[string][]event.ContextMessage, error) {
			return nil, errors.New("weaviate unavailable (HTTP 503)")
		}
		b.store.ReferencesFunc = func(context.Context, string, time.Time, int) ([]event.Reference, error) {
			return []event.Reference{{Ref: "S00001", Kind: "sale_order", EventID: "r0", SentAt: at(0)}}, nil
		}
		b.store.MutedFunc = func(context.Context, string, time.Time) (bool, error) {
			return false, errors.New("weaviate rejected the request")
		}
		if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err != nil {
			t.Fatal(err)
		}
		res := b.onlyResult(t)
		want := []event.Degradation{
			{Task: pipeline.TaskMessageHistory, Error: "timeout after 50ms"},
			{Task: pipeline.TaskRelevanceSearch, Error: "weaviate unavailable (HTTP 503)"},
			{Task: pipeline.TaskMutedStatus, Error: "weaviate rejected the request"},
		}
		if !slices.Equal(res.Degraded, want) {
			t.Errorf("degraded %+v,\nwant %+v", res.Degraded, want)
		}
		// The relevance task failed as a whole (its neighbours did): no hits.
		if len(res.History) != 0 || len(res.Relevant) != 0 || res.Muted || len(res.References) != 1 {
			t.Errorf("history %v relevant %v muted %v references %v", ids(res.History), ids(res.Relevant), res.Muted, res.References)
		}
		if got := b.metrics.get(pipeline.MetricMessagesDegraded, route.General); len(got) != 1 {
			t.Errorf("messages_degraded %v", got)
		}
		line := b.logs.lines(t)[0]
		if line["degraded"] != float64(3) || !slices.Equal(toStrings(line["degraded_tasks"]), []string{"message_history", "relevance_search", "muted_status"}) {
			t.Errorf("log line %v", line)
		}
	})
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestStoreFailureIsAnErrorAndNothingIsPublished: a message that could not
// be stored is left for redelivery and its result is not published. The
// error says once what was being done: the store's own error already does
// (the bug: the pipeline wrapped it again), a task timeout gets it here. It
// is logged once, by the Log middleware, on the event's line.
func TestStoreFailureIsAnErrorAndNothingIsPublished(t *testing.T) {
	t.Parallel()
	const what = "store message e-1 of chat c-1"
	for name, put := range map[string]func(context.Context, event.Event) error{
		"store error": func(_ context.Context, ev event.Event) error {
			// As the real store says it (store.Put).
			return fmt.Errorf("store message %s of chat %s: %w", ev.EventID, ev.ChatID, errors.New("weaviate unavailable"))
		},
		"timeout": func(ctx context.Context, _ event.Event) error { <-ctx.Done(); return ctx.Err() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{taskTimeout: 30 * time.Millisecond})
			b.store.PutFunc = put
			err := b.handle(t, userEvent("e-1", "c-1", "hello"))
			var poison *handler.PoisonError
			if err == nil || errors.As(err, &poison) || strings.Count(err.Error(), what) != 1 {
				t.Fatalf("err = %v, want a plain error saying %q once", err, what)
			}
			if n := len(b.pub.published()); n != 0 {
				t.Errorf("%d results published for an unstored message", n)
			}
			lines := b.logs.lines(t)
			if len(lines) != 1 || lines[0]["level"] != "warn" || lines[0]["message"] != middleware.SummaryFailed ||
				lines[0]["event_id"] != "e-1" || lines[0]["chat_id"] != "c-1" || lines[0]["error"] != err.Error() {
				t.Errorf("log lines %v, want the one failure line with the event's ids", lines)
			}
		})
	}
}

func TestPublishFailureIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.pub.PublishFunc = func(context.Context, *event.Result) error { return errors.New("throttled") }
	if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err == nil || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("err = %v", err)
	}
	if got := b.metrics.get(pipeline.MetricMessagesProcessed, route.General); len(got) != 0 {
		t.Errorf("messages_processed counted for an unpublished result")
	}
}

// TestInvalidEventsArePoison: the consumer sends them to the dead-letter
// queue with the decoder's error code; nothing is stored.
func TestInvalidEventsArePoison(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	for body, code := range map[string]string{
		`{"event_id":`: event.CodeNotJSON,
		`{"chat_id":"c","text":"x","sent_at":"x"}`: event.CodeMissingField,
		"\xff\xfe": event.CodeNotUTF8,
		`{"event_id":"e","chat_id":"c","text":"hi","sent_at":"yesterday"}`: event.CodeInvalidField,
	} {
		err := b.handle(t, body)
		var poison *handler.PoisonError
		if !errors.As(err, &poison) || poison.Code != code {
			t.Errorf("%q: err %v, want poison %s", body, err, code)
		}
	}
	if len(b.store.calls) != 0 {
		t.Errorf("store called for invalid events: %v", b.store.calls)
	}
}

// TestPanics: a panicking retrieval task is a degradation (logged with its
// stack), a panicking store task an error, and a panic in the handler's own
// path an error too — never the process's end.
func TestPanics(t *testing.T) {
	t.Parallel()
	t.Run("retrieval", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		b.store.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
			panic("index out of range")
		}
		if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err != nil {
			t.Fatal(err)
		}
		res := b.onlyResult(t)
		if !slices.Equal(res.Degraded, []event.Degradation{{Task: pipeline.TaskRelevanceSearch, Error: "panic: index out of range"}}) {
			t.Errorf("degraded %+v", res.Degraded)
		}
		var errLine map[string]any
		for _, l := range b.logs.lines(t) {
			if l["level"] == "error" {
				errLine = l
			}
		}
		if errLine == nil || !strings.Contains(fmt.Sprint(errLine["stack"]), "pipeline_test") || errLine["task"] != "relevance_search" {
			t.Errorf("panic not logged with its stack: %v", errLine)
		}
	})
	t.Run("store", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		b.store.PutFunc = func(context.Context, event.Event) error { panic("nil map") }
		err := b.handle(t, userEvent("e-1", "c-1", "hello"))
		var pe *panics.Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "store message e-1 of chat c-1") {
			t.Fatalf("err = %v, want a *panics.Error saying which store failed", err)
		}
		if len(b.pub.published()) != 0 {
			t.Error("published an unstored message")
		}
	})
	t.Run("handler", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		b.pub.PublishFunc = func(context.Context, *event.Result) error { panic("publisher bug") }
		err := b.handle(t, userEvent("e-1", "c-1", "hello"))
		var pe *panics.Error
		if !errors.As(err, &pe) || pe.Value != "publisher bug" {
			t.Fatalf("err = %v, want the panic as an error", err)
		}
	})
}

// TestRouteHint: a known hint wins over the rules; an unknown one is
// ignored.
func TestRouteHint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, hint, want string }{
		{"where is my invoice INV/2026/00017?", "general", route.General},
		{"hello there", "odoo_erp", route.OdooERP},
		{"where is my invoice?", "sales", route.OdooERP},
		{"hello there", "", route.General},
	} {
		b := setup(t, options{})
		extra := []string{}
		if tc.hint != "" {
			extra = []string{"route_hint", tc.hint}
		}
		if err := b.handle(t, userEvent("e-1", "c-1", tc.text, extra...)); err != nil {
			t.Fatal(err)
		}
		if got := b.onlyResult(t).Route; got != tc.want {
			t.Errorf("text %q hint %q: route %s, want %s", tc.text, tc.hint, got, tc.want)
		}
	}
}

// TestOtherEventsHaveNoResult: an assistant message is stored, mute and
// unmute set the state; none is published; each gives one log line.
func TestOtherEventsHaveNoResult(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	var stored, set []event.Event
	b.store.PutFunc = func(_ context.Context, ev event.Event) error { stored = append(stored, ev); return nil }
	b.store.SetMutedFunc = func(_ context.Context, ev event.Event) error { set = append(set, ev); return nil }
	for _, body := range []string{
		`{"event_id":"e-1","chat_id":"c-1","role":"assistant","text":"Your order shipped.","sent_at":"2026-11-28T10:00:00Z"}`,
		`{"event_id":"e-2","chat_id":"c-1","type":"mute","until":"2026-11-29T10:00:00Z"}`,
		`{"event_id":"e-3","chat_id":"c-1","type":"unmute"}`,
	} {
		if err := b.handle(t, body); err != nil {
			t.Fatal(err)
		}
	}
	if len(stored) != 1 || stored[0].Role != event.RoleAssistant || len(set) != 2 || set[0].Type != event.TypeMute || set[1].Type != event.TypeUnmute {
		t.Errorf("stored %+v, set %+v", stored, set)
	}
	if n := len(b.pub.published()); n != 0 {
		t.Errorf("%d results for events that have none", n)
	}
	lines := b.logs.lines(t)
	if len(lines) != 3 || lines[0]["role"] != "assistant" || lines[0]["type"] != "message" || lines[1]["muted"] != true ||
		lines[2]["type"] != "unmute" || lines[2]["muted"] != false {
		t.Errorf("log lines %v", lines)
	}
	if strings.Contains(b.logs.String(), "shipped") {
		t.Error("message text logged")
	}

	errDown := errors.New("weaviate unavailable")
	b.store.SetMutedFunc = func(context.Context, event.Event) error { return errDown }
	if err := b.handle(t, `{"event_id":"e-4","chat_id":"c-1","type":"mute"}`); !errors.Is(err, errDown) {
		t.Errorf("failed mute: %v", err)
	}
	if l := b.logs.lines(t); len(l) != 4 || l[3]["event_id"] != "e-4" || l[3]["level"] != "warn" {
		t.Errorf("failed mute's line: %v", l[len(l)-1])
	}
}

// TestLogLineAndMetrics: one info line per user message with the contract's
// fields and without the text; the route-dimensioned metrics.
func TestLogLineAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	if err := b.handle(t, userEvent("e-1", "c-1", "secret order details")); err != nil {
		t.Fatal(err)
	}
	lines := b.logs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1", len(lines))
	}
	l := lines[0]
	for _, k := range []string{"event_id", "chat_id", "route", "muted", "degraded", "duration_ms", "timings_ms"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line lacks %s: %v", k, l)
		}
	}
	timings, _ := l["timings_ms"].(map[string]any)
	for _, k := range []string{"message_history", "relevance_search", "muted_status", "store", "preprocessing", "total"} {
		if v, ok := timings[k].(float64); !ok || v < 0 {
			t.Errorf("timings_ms.%s = %v", k, timings[k])
		}
	}
	if l["level"] != "info" || l["route"] != route.OdooERP || l["message"] != pipeline.SummaryPreprocessed {
		t.Errorf("log line %v", l)
	}
	if strings.Contains(b.logs.String(), "secret") {
		t.Error("message text logged")
	}
	for _, name := range []string{pipeline.MetricMessageHistoryDuration, pipeline.MetricRelevanceSearchDuration,
		pipeline.MetricPreprocessingDuration, pipeline.MetricHandlerTotalDuration, pipeline.MetricMessagesProcessed} {
		if got := b.metrics.get(name, route.OdooERP); len(got) != 1 {
			t.Errorf("%s[odoo_erp] = %v, want one value", name, got)
		}
	}
	res := b.onlyResult(t)
	if res.TimingsMS.Preprocessing < res.TimingsMS.Store || res.TimingsMS.Total < res.TimingsMS.Preprocessing {
		t.Errorf("timings %+v", res.TimingsMS)
	}
}

// TestTooLargeResultIsTrimmed: a result SQS could not take loses relevant
// messages, then the oldest history, and says so in degraded.
func TestTooLargeResultIsTrimmed(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: pipeline.Config{HistoryLimit: 3, RelevanceLimit: 2}})
	b.store.RecentFunc = func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
		return []event.ContextMessage{msg("u1", event.RoleUser, 1), msg("a1", event.RoleAssistant, 2), msg("u2", event.RoleUser, 3)}, nil
	}
	b.store.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
		return []event.ContextMessage{msg("r1", event.RoleUser, 0), msg("r2", event.RoleUser, 0)}, nil
	}
	b.pub.PublishFunc = func(_ context.Context, r *event.Result) error {
		if len(r.History)+len(r.Relevant) > 2 {
			return fmt.Errorf("publish: %w", &publish.TooLargeError{EventID: r.EventID, Size: 300000, Limit: publish.MaxBatchBytes})
		}
		return nil
	}
	if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err != nil {
		t.Fatal(err)
	}
	res := b.onlyResult(t)
	if got := ids(res.History); !slices.Equal(got, []string{"a1", "u2"}) || len(res.Relevant) != 0 {
		t.Errorf("history %v relevant %v", got, ids(res.Relevant))
	}
	if res.Tokens.History != 6 || res.Tokens.Relevant != 0 {
		t.Errorf("tokens %+v after trimming, want what is left (2 messages of 3 words)", res.Tokens)
	}
	if want := []event.Degradation{{Task: pipeline.TaskResultSize, Error: "dropped 3 context messages to fit the SQS message size limit"}}; !slices.Equal(res.Degraded, want) {
		t.Errorf("degraded %+v", res.Degraded)
	}
}

// TestHandlerContextEndsEverything: when the consumer cancels the handler
// (lease lost, shutdown), the tasks end and the message is not finished.
func TestHandlerContextEndsEverything(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	started := make(chan struct{})
	b.store.PutFunc = func(ctx context.Context, _ event.Event) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- b.h.Handle(ctx, &handler.Message{ID: "m-1", Body: userEvent("e-1", "c-1", "hello"), ReceivedAt: time.Now()})
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Handle = %v, want context.Canceled", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c := pipeline.Config{}.WithDefaults()
	if c.HistoryLimit != pipeline.DefaultHistoryLimit || c.RelevanceLimit != pipeline.DefaultRelevanceLimit || c.Worker == "" || c.Now == nil {
		t.Errorf("defaults %+v", c)
	}
	if !strings.Contains(pipeline.WorkerID(), "/") {
		t.Errorf("WorkerID %q", pipeline.WorkerID())
	}
	if _, err := pipeline.New(pipeline.Config{HistoryLimit: -1}, pipeline.Deps{}); err == nil ||
		!strings.Contains(err.Error(), "history limit") || !strings.Contains(err.Error(), "store: required") {
		t.Errorf("New with bad config: %v", err)
	}
}

// TestNoRelevance: RELEVANCE_LIMIT=0 makes no relevance call.
func TestNoRelevance(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: pipeline.Config{NoRelevance: true}})
	if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err != nil {
		t.Fatal(err)
	}
	if b.store.called("Relevant") != 0 {
		t.Error("relevance searched although off")
	}
	if res := b.onlyResult(t); res.Relevant == nil || len(res.Degraded) != 0 {
		t.Errorf("result %+v", res)
	}
}

// TestFailuresTheConsumerHolds: a store or publish failure that retrying can
// fix is marked transient (the consumer holds the message instead of
// spending a receive); Weaviate rejecting the request, or a panic, is not.
func TestFailuresTheConsumerHolds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"unavailable", &store.Error{Kind: store.KindUnavailable, Err: errors.New("connection refused")}, true},
		{"timeout", &store.Error{Kind: store.KindTimeout, Err: context.DeadlineExceeded}, true},
		{"unauthorized", &store.Error{Kind: store.KindUnauthorized, Err: errors.New("401")}, true},
		{"breaker open", &breaker.OpenError{}, true},
		{"rejected", &store.Error{Kind: store.KindRejected, Err: errors.New("422")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{})
			b.store.PutFunc = func(context.Context, event.Event) error { return tc.err }
			for _, body := range []string{userEvent("e-1", "c-1", "hello"), userEvent("e-2", "c-1", "hi", "role", "assistant")} {
				err := b.handle(t, body)
				if err == nil || handler.IsTransient(err) != tc.transient {
					t.Errorf("store failing with %v: handler error %v, transient %v; want transient %v", tc.err, err, handler.IsTransient(err), tc.transient)
				}
			}
		})
	}
	// A publish failure is what the publisher says it is (the bug: every
	// publish failure was held, a refused result too, blocking its chat for
	// two minutes).
	for _, tc := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"sqs unavailable", &sqsbatch.Error{Op: "SendMessageBatch", Err: &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}}, true},
		{"refused (sender's fault)", &sqsbatch.Error{Op: "SendMessageBatch", Code: "InvalidParameterValue", SenderFault: true}, false},
		{"publisher closed", publish.ErrClosed, false},
	} {
		t.Run("publish "+tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{})
			b.pub.PublishFunc = func(context.Context, *event.Result) error { return fmt.Errorf("publish result e-1: %w", tc.err) }
			if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err == nil || handler.IsTransient(err) != tc.transient {
				t.Errorf("publish failing with %v: handler error %v, want transient %v", tc.err, err, tc.transient)
			}
		})
	}
	t.Run("panic", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{})
		b.store.PutFunc = func(context.Context, event.Event) error { panic("bug") }
		if err := b.handle(t, userEvent("e-1", "c-1", "hello")); err == nil || handler.IsTransient(err) {
			t.Errorf("store panicking: handler error %v, want a failure that is not transient", err)
		}
	})
}

// TestMuteTime: a mute or unmute reaches the store with its own sent_at,
// or, without one, when SQS first received it (a redriven copy's original
// time, not the copy's).
func TestMuteTime(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	var set []event.Event
	b.store.SetMutedFunc = func(_ context.Context, ev event.Event) error { set = append(set, ev); return nil }
	sent := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	first := sent.Add(-time.Hour)
	for _, body := range []string{
		`{"event_id":"e-1","chat_id":"c-1","type":"mute","sent_at":"2026-11-27T09:00:00Z"}`,
		`{"event_id":"e-2","chat_id":"c-1","type":"unmute"}`,
	} {
		m := &handler.Message{ID: "m", Body: body, ReceiveCount: 1, ReceivedAt: time.Now(), SentAt: sent, FirstSentAt: first}
		if err := b.chain.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Time{time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), first}
	if len(set) != 2 || !set[0].SentAt.Equal(want[0]) || !set[1].SentAt.Equal(want[1]) {
		t.Errorf("store got %+v, want times %v", set, want)
	}
}

// TestV3Fields: through the handler, a result holds the passages with their
// neighbours, the burst (from history), superseded_by (from the messages
// already received behind the event), the references of the event, the
// history and the store, and the token counts.
func TestV3Fields(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.store.RecentFunc = func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
		return []event.ContextMessage{msg("q", event.RoleUser, 10), msg("ans", event.RoleAssistant, 11),
			{EventID: "b1", Role: event.RoleUser, Text: "hi, about WH/OUT/00005", SentAt: at(29)}}, nil
	}
	b.store.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
		return []event.ContextMessage{hit(msg("old", event.RoleUser, 1), 1.5)}, nil
	}
	b.store.FollowingFunc = func(_ context.Context, _ string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
		if len(hits) != 1 || n != 1 {
			t.Errorf("Following(%v, %d)", ids(hits), n)
		}
		return map[string][]event.ContextMessage{"old": {msg("reply", event.RoleAssistant, 2)}}, nil
	}
	b.store.ReferencesFunc = func(context.Context, string, time.Time, int) ([]event.Reference, error) {
		return []event.Reference{{Ref: "S00001", Kind: "sale_order", EventID: "old", SentAt: at(1)}}, nil
	}
	m := &handler.Message{ID: "m-1", Body: userEvent("e-1", "c-1", "and the invoice INV/2026/00017?"), ReceivedAt: time.Now(),
		Behind: func() []string {
			return []string{`{"event_id":"e-2","chat_id":"c-1","text":"quickly please","sent_at":"` + at(30).Add(20*time.Second).Format(time.RFC3339) + `"}`, "not json"}
		}}
	if err := b.chain.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	res := b.onlyResult(t)
	if got := ids(res.History); !slices.Equal(got, []string{"q", "ans", "b1"}) {
		t.Errorf("history %v", got)
	}
	if got := ids(res.Relevant); !slices.Equal(got, []string{"old", "reply"}) || res.Relevant[1].With != "old" || res.Relevant[0].Score == nil {
		t.Errorf("relevant %+v", res.Relevant)
	}
	if !slices.Equal(res.Burst, []string{"b1"}) || res.SupersededBy != "e-2" {
		t.Errorf("burst %v superseded_by %q", res.Burst, res.SupersededBy)
	}
	var refs []string
	for _, r := range res.References {
		refs = append(refs, r.Ref+"@"+r.EventID)
	}
	if want := []string{"INV/2026/00017@e-1", "WH/OUT/00005@b1", "S00001@old"}; !slices.Equal(refs, want) {
		t.Errorf("references %v, want %v", refs, want)
	}
	if want := (event.Tokens{History: 3 + 3 + 3, Relevant: 3 + 3, Event: 4}); res.Tokens != want {
		t.Errorf("tokens %+v, want %+v", res.Tokens, want)
	}
	line := b.logs.lines(t)[0]
	if line["superseded_by"] != "e-2" || line["burst"] != float64(1) {
		t.Errorf("log line %v", line)
	}
}

// TestRouteCarry: a message matching no rule takes the route of the chat's
// newest rule-matched user message of the last ROUTE_CARRY; a hint still
// wins; older messages, assistant messages and a failed history carry
// nothing; ROUTE_CARRY=0 turns it off.
func TestRouteCarry(t *testing.T) {
	t.Parallel()
	recent := func(minute int, text string) func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
		return func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
			return []event.ContextMessage{
				{EventID: "u", Role: event.RoleUser, Text: text, SentAt: at(minute)},
				{EventID: "a", Role: event.RoleAssistant, Text: "Sorry, I booked a replacement for the two crates.", SentAt: at(minute + 1)},
			}, nil
		}
	}
	for _, tc := range []struct {
		name, text, hint string
		recent           func(context.Context, string, time.Time, int) ([]event.ContextMessage, error)
		cfg              pipeline.Config
		want             string
	}{
		{"carried", "Thanks Lucía! When will the replacement arrive?", "", recent(20, "my last delivery was missing two crates"), pipeline.Config{}, route.OdooERP},
		{"own rule first", "Where is order S00042?", "", recent(20, "hello"), pipeline.Config{}, route.OdooERP},
		{"hint wins", "When will it arrive?", "general", recent(20, "my delivery is late"), pipeline.Config{}, route.General},
		{"too old", "When will it arrive?", "", recent(-30, "my delivery is late"), pipeline.Config{}, route.General},
		{"nothing to carry", "When will it arrive?", "", recent(20, "hello there"), pipeline.Config{}, route.General},
		{"off", "When will it arrive?", "", recent(20, "my delivery is late"), pipeline.Config{NoCarry: true}, route.General},
		{"history failed", "When will it arrive?", "", func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
			return nil, errors.New("weaviate unavailable")
		}, pipeline.Config{}, route.General},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{cfg: tc.cfg})
			b.store.RecentFunc = tc.recent
			extra := []string{}
			if tc.hint != "" {
				extra = []string{"route_hint", tc.hint}
			}
			if err := b.handle(t, userEvent("e-1", "c-1", tc.text, extra...)); err != nil {
				t.Fatal(err)
			}
			if got := b.onlyResult(t).Route; got != tc.want {
				t.Errorf("route %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCopiesAskNoNeighbours: a hit with the words of a better hit comes
// after the others (see Assemble): when RELEVANCE_LIMIT passages are there
// without it, its neighbours are not asked for.
func TestCopiesAskNoNeighbours(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: pipeline.Config{HistoryLimit: 10, RelevanceLimit: 2, Neighbours: 1}})
	text := func(m event.ContextMessage, s string) event.ContextMessage { m.Text = s; return m }
	b.store.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
		return []event.ContextMessage{hit(text(msg("a", event.RoleUser, 1), "Thanks Tom!"), 3),
			hit(text(msg("b", event.RoleUser, 3), "thanks, tom"), 2), hit(msg("c", event.RoleUser, 5), 1)}, nil
	}
	b.store.FollowingFunc = func(_ context.Context, _ string, hits []event.ContextMessage, n int) (map[string][]event.ContextMessage, error) {
		if got := ids(hits); !slices.Equal(got, []string{"a", "c"}) {
			t.Errorf("Following(%v, %d), want a and c", got, n)
		}
		return nil, nil
	}
	if err := b.handle(t, userEvent("e-1", "c-1", "what did Tom say?")); err != nil {
		t.Fatal(err)
	}
	if got := ids(b.onlyResult(t).Relevant); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("relevant %v, want a and c", got)
	}
}
