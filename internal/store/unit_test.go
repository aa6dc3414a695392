package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/weaviate/weaviate/entities/models"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	c := Config{URL: "http://127.0.0.1:8080"}.WithDefaults()
	if c.MaxConns != DefaultMaxConns || c.BatchSize != DefaultBatchSize || c.BatchLinger != DefaultBatchLinger ||
		c.RequestTimeout != DefaultRequestTimeout || c.MaxQueryTerms != DefaultMaxQueryTerms || c.HybridAlpha != DefaultHybridAlpha {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{URL: "ftp://x", GRPCAddr: "nohostport", MaxConns: -1, BatchSize: -2, HybridAlpha: 2}.WithDefaults()
	err := bad.validate()
	for _, want := range []string{"URL", "GRPCAddr", "MaxConns", "BatchSize", "HybridAlpha"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want a problem with %s", err, want)
		}
	}
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "URL is required") {
		t.Errorf("New without URL: %v", err)
	}
}

// Golden ids: computed once, must never change.
const (
	messageIDGolden = "99e32389-e035-5c19-ae28-fd5f601e8c06"
	stateIDGolden   = "5ecb17bd-84dd-51bb-b4ac-479cb1aa6a69"
)

func TestIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	// Fixed values: a change of namespace or input would make every
	// redelivered event a second object.
	if got := MessageID("c-77", "e-1042"); got != messageIDGolden {
		t.Errorf("MessageID = %s, want %s", got, messageIDGolden)
	}
	if got := StateID("c-77"); got != stateIDGolden {
		t.Errorf("StateID = %s, want %s", got, stateIDGolden)
	}
	distinct := map[string]bool{
		MessageID("c", "e"): true, MessageID("c", "e2"): true, MessageID("c2", "e"): true,
		MessageID("ab", "c"): true, MessageID("a", "bc"): true, StateID("c"): true,
	}
	if len(distinct) != 6 {
		t.Fatalf("ids collide: %v", distinct)
	}
}

func TestKeywordQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"Hello, World!", 10, "hello world"},
		{`say "hi" {to} \them\`, 10, "say hi to them"},
		{"line1\nline2\r\n\ttab", 10, "line1 line2 tab"},
		{"a\x00b\x07c", 10, "a b c"},
		{"bad\xff\xfebytes", 10, "bad bytes"},
		{"🇩🇪 flag 🏴\U000E0067\U000E0062 party 👨‍👩‍👧", 10, "flag party"},
		{"𝔘𝔫𝔦 𠜎x", 10, "𝔘𝔫𝔦 𠜎x"}, // no lowercase forms; above U+FFFF, kept
		{"one two three four", 2, "one two"},
		{"🙂 !!! ???", 10, ""},
		{"", 10, ""},
		{"ÄÖÜ straße Ωmega", 10, "äöü straße ωmega"},
	}
	for _, tt := range tests {
		if got := keywordQuery(tt.in, tt.max); got != tt.want {
			t.Errorf("keywordQuery(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// FuzzKeywordQuery checks the query is always letters, digits and single
// spaces, valid UTF-8, within the term cap, and the words Weaviate's `word`
// tokenizer finds in the text, in order.
func FuzzKeywordQuery(f *testing.F) {
	for _, s := range []string{"hello world", "\xff\xfe", `"}{\`, "🇩🇪a", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := keywordQuery(s, 5)
		if !utf8.ValidString(q) {
			t.Fatalf("invalid UTF-8: %q", q)
		}
		if strings.HasPrefix(q, " ") || strings.HasSuffix(q, " ") || strings.Contains(q, "  ") {
			t.Fatalf("bad spacing: %q", q)
		}
		for _, r := range q {
			if r != ' ' && !unicode.IsLetter(r) && !unicode.IsNumber(r) {
				t.Fatalf("rune %q in query %q", r, q)
			}
		}
		words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
		if len(words) > 5 {
			words = words[:5]
		}
		for i, w := range words {
			words[i] = strings.Map(unicode.ToLower, w)
		}
		if want := strings.Join(words, " "); q != want {
			t.Fatalf("keywordQuery(%q) = %q, want %q", s, q, want)
		}
	})
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	withKey := &Store{cfg: Config{APIKey: "sekrit-key"}}
	noKey := &Store{}
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name      string
		err       *Error
		kind      Kind
		transient bool
		contains  string
	}{
		{"401 with key", withKey.statusError(http.StatusUnauthorized, []byte("invalid api key sekrit-key")), KindUnauthorized, false, "refused the API key"},
		{"401 without key", noKey.statusError(http.StatusUnauthorized, nil), KindUnauthorized, false, "none is configured"},
		{"403", withKey.statusError(http.StatusForbidden, nil), KindUnauthorized, false, "not allowed"},
		{"422", noKey.statusError(http.StatusUnprocessableEntity, []byte("already exists")), KindRejected, false, "already exists"},
		{"429", noKey.statusError(http.StatusTooManyRequests, nil), KindOverloaded, true, "HTTP 429"},
		{"503", noKey.statusError(http.StatusServiceUnavailable, nil), KindUnavailable, true, "HTTP 503"},
		{"network", callError(ctx, errors.New("connection refused")), KindUnavailable, true, "connection refused"},
		{"deadline", callError(ctx, fmt.Errorf("x: %w", context.DeadlineExceeded)), KindTimeout, true, "deadline"},
		{"canceled", callError(canceled, errors.New("whatever")), KindCanceled, false, "canceled"},
		{"grpc unavailable", noKey.grpcError(ctx, status.Error(codes.Unavailable, "down")), KindUnavailable, true, "down"},
		{"grpc exhausted", noKey.grpcError(ctx, status.Error(codes.ResourceExhausted, "busy")), KindOverloaded, true, "busy"},
		{"grpc unauthenticated", withKey.grpcError(ctx, status.Error(codes.Unauthenticated, "no")), KindUnauthorized, false, "refused the API key"},
		{"grpc invalid", noKey.grpcError(ctx, status.Error(codes.InvalidArgument, "bad filter")), KindRejected, false, "bad filter"},
		{"grpc deadline", noKey.grpcError(ctx, status.Error(codes.DeadlineExceeded, "slow")), KindTimeout, true, "DeadlineExceeded"},
		{"graphql 429", graphQLOverloaded("429 Too many requests"), KindOverloaded, true, "Too many"},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("history of chat c: %w", tt.err)
		if KindOf(wrapped) != tt.kind || IsOutage(wrapped) != tt.transient {
			t.Errorf("%s: kind %v outage %v, want %v %v", tt.name, KindOf(wrapped), IsOutage(wrapped), tt.kind, tt.transient)
		}
		var e *Error
		if !errors.As(wrapped, &e) || e.Transient() != (tt.kind != KindRejected && tt.kind != KindSchema) || e.Kind.Fault() != (e.Kind.Outage() || e.Kind == KindUnauthorized) {
			t.Errorf("%s: errors.As failed or Transient wrong: only a rejected request or a schema conflict is the request's fault", tt.name)
		}
		if msg := wrapped.Error(); !strings.Contains(msg, tt.contains) || strings.Contains(msg, "sekrit") {
			t.Errorf("%s: message %q, want it to contain %q and never the key", tt.name, msg, tt.contains)
		}
	}
	if err := callError(ctx, fmt.Errorf("x: %w", context.DeadlineExceeded)); !errors.Is(err, context.DeadlineExceeded) {
		t.Error("a timeout does not unwrap to context.DeadlineExceeded")
	}
	long := noKey.statusError(http.StatusBadRequest, []byte(strings.Repeat("é", 500)))
	if len(long.Detail) > maxDetail+len("…") || !utf8.ValidString(long.Detail) {
		t.Errorf("detail not cut to a valid excerpt: %d bytes", len(long.Detail))
	}
	for in, want := range map[string]string{
		`could not find class ChatMessage in schema`:                                         `could not find class ChatMessage in schema`,
		`Syntax Error GraphQL request (1:54) Unexpected Name "call me"`:                      `Syntax Error GraphQL request (1:54) Unexpected Name "…"`,
		`value 'a' and "b" and ` + "`c`" + ` kept out`:                                       `value '…' and "…" and ` + "`…`" + ` kept out`,
		`unclosed "quote runs to the end`:                                                    `unclosed "…`,
		`{"error":[{"message":"could not write text \"call me\": {\"text\":\"call me\"}"}]}`: `could not write text "…": {"…":"…"}`,
		strings.Repeat("x", 100):                                                             strings.Repeat("x", maxDetail) + "…",
	} {
		if got := excerpt(in); got != want {
			t.Errorf("excerpt(%q) = %q, want %q", in, got, want)
		}
	}
	if KindOf(errors.New("plain")) != 0 || IsOutage(nil) {
		t.Error("a plain error has a kind")
	}
}

// pipelineStore is the interface the pipeline declares for the store,
// repeated here so a change on either side breaks this build.
type pipelineStore interface {
	History(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error)
	Relevant(ctx context.Context, chatID, text string, before time.Time, limit int) ([]event.ContextMessage, error)
	Muted(ctx context.Context, chatID string, at time.Time) (bool, error)
	Put(ctx context.Context, ev event.Event) error
	SetMuted(ctx context.Context, ev event.Event) error
}

var (
	_ pipelineStore                                    = (*Store)(nil)
	_ interface{ EnsureSchema(context.Context) error } = (*Store)(nil) // setup.Schema
	_ interface{ Ready(context.Context) error }        = (*Store)(nil) // health
)

// TestClassVectors: hybrid search only when Weaviate vectorizes the objects.
func TestClassVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		class *models.Class
		want  vectorInfo
	}{
		{"chatprep's schema", MessagesClass(), vectorInfo{}},
		{"no vectorizer field", &models.Class{}, vectorInfo{}},
		{"class vectorizer", &models.Class{Vectorizer: "text2vec-openai"}, vectorInfo{hybrid: true}},
		{"named vector without vectorizer", &models.Class{VectorConfig: map[string]models.VectorConfig{
			"own": {Vectorizer: map[string]any{"none": map[string]any{}}}}}, vectorInfo{}},
		{"named vectors, first vectorized one by name", &models.Class{VectorConfig: map[string]models.VectorConfig{
			"z": {Vectorizer: map[string]any{"text2vec-cohere": map[string]any{}}},
			"b": {Vectorizer: map[string]any{"text2vec-openai": map[string]any{}}},
			"a": {Vectorizer: map[string]any{"none": map[string]any{}}}}}, vectorInfo{hybrid: true, target: "b"}},
	}
	for _, tt := range tests {
		if got := classVectors(tt.class); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestScopedTerms(t *testing.T) {
	t.Parallel()
	a, b := chatScope("chat-a"), chatScope("chat-b")
	if a == b || len(a) != scopeLen+1 || chatScope("chat-a") != a {
		t.Fatalf("scopes %q %q: want distinct, stable, %d hex digits and a colon", a, b, scopeLen)
	}
	if got, want := storedTerms("chat-a", "Where is THE order S00042, please? Orders!"), a+"where "+a+"order "+a+"s00042 "+a+"pleas "+a+"order"; got != want {
		t.Errorf("storedTerms = %q, want %q (lowercased, stop words dropped, stemmed, every occurrence)", got, want)
	}
	if got := storedTerms("chat-a", "the a of 🎉 !!"); got != "" {
		t.Errorf("only stop words and symbols: %q, want nothing", got)
	}
	if got, want := queryTerms("chat-a", "deliveries delivery one two", 2), a+"deliveri "+a+"deliveries "+a+"delivery"; got != want {
		t.Errorf("queryTerms capped at 2 words = %q, want %q (distinct stems, and the word where its stem differs)", got, want)
	}
}
