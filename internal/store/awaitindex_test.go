package store

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weaviate/weaviate/entities/models"
)

// slowIndexWeaviate answers the schema calls EnsureSchema makes like a
// Weaviate that agrees on a new collection at once and opens its index only
// after `late` more looks at its shards.
type slowIndexWeaviate struct {
	late int // shard looks answered 404 after the collection exists; < 0: never opened

	mu      sync.Mutex
	classes map[string]*models.Class
	looks   map[string]int // shard looks per class
	tenants []map[string]string
	log     []string
}

func (f *slowIndexWeaviate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	switch {
	case path == "/meta":
		json.NewEncoder(w).Encode(map[string]string{"version": "1.35.2"}) //nolint:errcheck
	case r.Method == http.MethodPost && path == "/schema":
		var c models.Class
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.classes[c.Class] = &c
		f.log = append(f.log, "create "+c.Class)
		json.NewEncoder(w).Encode(&c) //nolint:errcheck
	case path == "/schema/"+MessagesCollection+"/tenants" && r.Method == http.MethodPost:
		var ts []map[string]string
		if err := json.NewDecoder(r.Body).Decode(&ts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.tenants = append(f.tenants, ts...)
		f.log = append(f.log, "tenants "+MessagesCollection)
		json.NewEncoder(w).Encode(ts) //nolint:errcheck
	case path == "/schema/"+MessagesCollection+"/tenants":
		json.NewEncoder(w).Encode(f.tenants) //nolint:errcheck
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/shards"):
		class := strings.TrimSuffix(strings.TrimPrefix(path, "/schema/"), "/shards")
		f.looks[class]++
		f.log = append(f.log, "shards "+class)
		if f.classes[class] == nil || f.late < 0 || f.looks[class] <= f.late {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"error": []map[string]string{{"message": "cannot get shards status for a non-existing index for " + class}}}) //nolint:errcheck
			return
		}
		json.NewEncoder(w).Encode([]map[string]string{{"name": "s1", "status": "READY"}}) //nolint:errcheck
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/schema/"):
		c := f.classes[strings.TrimPrefix(path, "/schema/")]
		if c == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(c) //nolint:errcheck
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
	}
}

func newSlowIndexStore(t *testing.T, late int) (*Store, *slowIndexWeaviate) {
	t.Helper()
	f := &slowIndexWeaviate{late: late, classes: map[string]*models.Class{}, looks: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, f
}

// TestEnsureSchemaWaitsForTheIndex: EnsureSchema returns only once Weaviate
// has opened each new collection's index, so that `worker setup` is done
// when the collections take writes.
func TestEnsureSchemaWaitsForTheIndex(t *testing.T) {
	t.Parallel()
	s, f := newSlowIndexStore(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, class := range []string{MessagesCollection, StateCollection} {
		if f.looks[class] != 4 {
			t.Errorf("%s: %d looks at its shards, want 4 (three before the index opened)", class, f.looks[class])
		}
	}
	want := []string{"create " + MessagesCollection}
	for range 4 {
		want = append(want, "shards "+MessagesCollection)
	}
	if got := f.log[:len(want)]; strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("calls %v, want %v first: the state collection before the messages' index opened", got, want)
	}
}

// TestEnsureSchemaIndexNeverOpens: the wait ends with the context, with an
// error that says so.
func TestEnsureSchemaIndexNeverOpens(t *testing.T) {
	t.Parallel()
	s, _ := newSlowIndexStore(t, -1)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := s.EnsureSchema(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || KindOf(err) != KindTimeout || !strings.Contains(err.Error(), "has not opened it") {
		t.Fatalf("EnsureSchema = %v (kind %v), want a timeout waiting for the index", err, KindOf(err))
	}
}
