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
	w := startWeaviate(t, devstack.WeaviateOptions{Env: []string{
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
			st := newStoreAt(t, w, b.grpc, nil)
			chat, other := chatID(t), chatID(t)
			putAll(t, st,
				msg(chat, "invoice", event.RoleUser, 0, "my invoice is overdue"),
				msg(chat, "pizza", event.RoleUser, 1, "where can I order pizza"),
				msg(other, "leak", event.RoleUser, 0, "invoice overdue invoice"),
			)
			before := vectorized.Load()
			got, err := st.Relevant(ctx, chat, "overdue invoice?", t0.Add(time.Hour), 5)
			if err != nil {
				t.Fatal(err)
			}
			if vi := st.vectors.Load(); vi == nil || !vi.hybrid {
				t.Fatalf("vectorizer not detected: %+v", vi)
			}
			if vectorized.Load() == before {
				t.Error("the search did not vectorize the query: not hybrid")
			}
			ids := eventIDs(got)
			if len(ids) == 0 || ids[0] != "invoice" || got[0].Score == nil {
				t.Fatalf("relevant = %v, want invoice first with a score", ids)
			}
			for _, id := range ids {
				if id == "leak" {
					t.Fatal("another chat's message came back")
				}
			}
		})
	}
}
