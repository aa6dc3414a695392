package store

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// fakeInference serves the inference API of Weaviate's text2vec-transformers
// module with a tiny bag-of-words embedding, so a real server can vectorize
// without a model. It counts the vectorizations in calls.
func fakeInference(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	const dims = 32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /meta", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"model":"fake-bag-of-words"}`))
	})
	mux.HandleFunc("POST /vectors", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Text string `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		vec := make([]float32, dims)
		for _, word := range strings.FieldsFunc(strings.ToLower(req.Text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
			h := fnv.New32a()
			h.Write([]byte(word))
			vec[h.Sum32()%dims]++
		}
		var norm float64
		for _, v := range vec {
			norm += float64(v * v)
		}
		if norm == 0 {
			vec[0], norm = 1, 1
		}
		for i := range vec {
			vec[i] /= float32(math.Sqrt(norm))
		}
		json.NewEncoder(w).Encode(map[string]any{"text": req.Text, "dims": dims, "vector": vec})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestHybridWithVectorizer: on a messages collection with a vectorizer the
// store finds that out and searches hybrid (BM25 alone would also pass, so
// the search is checked to have used the vectorizer's query endpoint), on
// both read paths.
func TestHybridWithVectorizer(t *testing.T) {
	t.Parallel()
	var vectorized atomic.Int64
	inference := fakeInference(t, &vectorized)
	w := weaviatetest.Start(t, devstack.WeaviateOptions{Env: []string{
		"ENABLE_MODULES=text2vec-transformers",
		"TRANSFORMERS_INFERENCE_API=" + inference.URL,
	}})
	ctx := testCtx(t, time.Minute)
	setup := newStoreAt(t, w, false, nil)
	class := MessagesClass()
	class.Vectorizer = "text2vec-transformers"
	// Created with chatprep's schema as it is, its text is not searchable:
	// the hybrid search needs it, and the worker says so.
	if err := setup.client.Schema().ClassCreator().WithClass(class).Do(ctx); err != nil {
		t.Fatal(err)
	}
	if err := setup.EnsureSchema(ctx); KindOf(err) != KindSchema || !strings.Contains(err.Error(), "hybrid search") {
		t.Fatalf("EnsureSchema on a vectorized collection whose text is not searchable: %v, want a KindSchema error naming the hybrid search", err)
	}
	if err := setup.client.Schema().ClassDeleter().WithClassName(class.Class).Do(ctx); err != nil {
		t.Fatal(err)
	}
	findProperty(class, propText).IndexSearchable = ptr(true)
	if err := setup.client.Schema().ClassCreator().WithClass(class).Do(ctx); err != nil {
		t.Fatal(err)
	}
	if err := setup.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newStoreAt(t, w, b.grpc, func(c *Config) { c.Tokens = counter(t) })
			chat, other := chatID(t), chatID(t)
			stored := vectorized.Load()
			putAll(t, st,
				msg(chat, "invoice", event.RoleUser, 0, "my invoice INV/2026/00017 is overdue"),
				msg(chat, "reply", event.RoleAssistant, 1, "sorry, paying it now"),
				msg(chat, "pizza", event.RoleUser, 2, "where can I order pizza"),
				msg(other, "leak", event.RoleUser, 0, "invoice overdue invoice"),
			)
			// The cost of hybrid: one vectorization per stored message…
			if n := vectorized.Load() - stored; n != 4 {
				t.Errorf("storing 4 messages vectorized %d texts, want 4", n)
			}
			before := vectorized.Load()
			got, err := st.Relevant(ctx, chat, "overdue invoice?", t0.Add(time.Hour), 5)
			if err != nil {
				t.Fatal(err)
			}
			if f := st.known.Load(); f == nil || !f.vectors.hybrid {
				t.Fatalf("vectorizer not detected: %+v", f)
			}
			if vectorized.Load() == before {
				t.Error("the search did not vectorize the query: not hybrid")
			}
			// … and one per relevance search, for its query.
			if n := vectorized.Load() - before; n != 1 {
				t.Errorf("one relevance search vectorized %d texts, want 1", n)
			}
			ids := eventIDs(got)
			if len(ids) == 0 || ids[0] != "invoice" || got[0].Score == nil || got[0].Tokens == 0 {
				t.Fatalf("relevant = %v (%+v), want invoice first with a score and its tokens", ids, got)
			}
			// The rest of the context works the same on a vectorizing collection.
			following, err := st.Following(ctx, chat, got[:1], 1)
			if err != nil || len(following["invoice"]) != 1 || following["invoice"][0].EventID != "reply" {
				t.Errorf("Following on the hybrid collection: %v, %v", following, err)
			}
			refs, err := st.References(ctx, chat, t0.Add(time.Hour), 10)
			if err != nil || len(refs) != 1 || refs[0].Ref != "INV/2026/00017" {
				t.Errorf("References on the hybrid collection: %v, %v", refs, err)
			}
			for _, id := range ids {
				if id == "leak" {
					t.Fatal("another chat's message came back")
				}
			}
		})
	}
}
