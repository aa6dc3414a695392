package store

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chatprep/chatprep/internal/event"
)

// TestOneClassificationForBothPaths: the failures Weaviate itself cannot be
// made to produce here, a proxy in front of it failing, classify the same
// on both paths: a gRPC Internal or Unknown as an HTTP 500 (and a GraphQL
// error) is: Weaviate unavailable, an outage, held and counted by the
// breaker. (Refused keys: TestAPIKey; read-only shards: TestReadOnlyShard;
// a stopped server: TestWeaviateDown; each on both paths.)
func TestOneClassificationForBothPaths(t *testing.T) {
	t.Parallel()
	calls := func(st *Store, chat string) map[string]func(context.Context) error {
		return map[string]func(context.Context) error{
			"history":  func(ctx context.Context) error { _, err := st.History(ctx, chat, event.RoleUser, t0, 5); return err },
			"relevant": func(ctx context.Context) error { _, err := st.Relevant(ctx, chat, "proxy failure", t0, 5); return err },
			"put":      func(ctx context.Context) error { return st.Put(ctx, msg(chat, "p", event.RoleUser, 0, "x")) },
		}
	}
	check := func(t *testing.T, st *Store) {
		t.Helper()
		for name, call := range calls(st, chatID(t)) {
			err := call(testCtx(t, 20*time.Second))
			if KindOf(err) != KindUnavailable || !IsOutage(err) || !isTransient(err) {
				t.Errorf("%s: %v, want a transient KindUnavailable (an outage), as an HTTP 500", name, err)
			}
		}
	}

	for _, code := range []codes.Code{codes.Internal, codes.Unknown} {
		t.Run("grpc "+code.String(), func(t *testing.T) {
			t.Parallel()
			addr := failingGRPC(t, code)
			check(t, newStoreAt(t, shared, true, func(c *Config) { c.GRPCAddr = addr }))
		})
	}
	for _, tt := range []struct {
		name string
		fail http.HandlerFunc
	}{
		{"rest 500", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream connect error or disconnect/reset before headers", http.StatusInternalServerError)
		}},
		{"graphql error", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/graphql" {
				http.Error(w, "upstream connect error", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"errors":[{"message":"explorer: list class: search: object search at index chatmessage: shard not found"}]}`))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, newStoreAt(t, shared, false, func(c *Config) { c.URL = failingProxy(t, tt.fail) }))
		})
	}
}

// failingGRPC is a gRPC server that answers every call with code, as a
// proxy in front of Weaviate does when its upstream fails.
func failingGRPC(t *testing.T, code codes.Code) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		return status.Error(code, "upstream connect error or disconnect/reset before headers")
	}))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}

// failingProxy is a reverse proxy to the shared Weaviate whose searches
// and batch writes fail with fail; everything else (the schema, the
// shard status) goes through.
func failingProxy(t *testing.T, fail http.HandlerFunc) string {
	t.Helper()
	target, err := url.Parse(shared.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/graphql" || strings.HasPrefix(r.URL.Path, "/v1/batch/") {
			fail(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
