package store

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/event"
)

// TestSearchPathChosenAtStart: gRPC when its endpoint answers; GraphQL,
// with one warning naming WEAVIATE_GRPC_ADDR, when only REST answers; gRPC
// kept when Weaviate is not up at all yet. Either path serves the reads.
func TestSearchPathChosenAtStart(t *testing.T) {
	t.Parallel()
	if st := newStore(t, true); st.SearchPath() != "grpc" {
		t.Errorf("a reachable gRPC endpoint: path %s", st.SearchPath())
	}

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	var logs bytes.Buffer
	st := newStoreAt(t, shared, true, func(c *Config) {
		c.GRPCAddr, c.DialTimeout, c.Logger = closed, 300*time.Millisecond, zerolog.New(&logs)
	})
	if st.SearchPath() != "graphql" {
		t.Fatalf("gRPC unreachable, REST up: path %s, want graphql", st.SearchPath())
	}
	if n := strings.Count(logs.String(), `"level":"warn"`); n != 1 || !strings.Contains(logs.String(), "WEAVIATE_GRPC_ADDR") || !strings.Contains(logs.String(), closed) {
		t.Errorf("%d warnings: %s; want one naming WEAVIATE_GRPC_ADDR and the address", n, logs.String())
	}
	ctx := testCtx(t, 30*time.Second)
	chat := chatID(t)
	if err := st.Put(ctx, event.Event{EventID: "e1", ChatID: chat, Role: event.RoleUser, Text: "hello there", SentAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.History(ctx, chat, event.RoleUser, time.Now(), 5); err != nil {
		t.Errorf("history over GraphQL: %v", err)
	}

	down, err := New(Config{URL: "http://" + closed, GRPCAddr: closed, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if down.SearchPath() != "grpc" {
		t.Errorf("Weaviate down altogether: path %s, want grpc (it comes up with both)", down.SearchPath())
	}
}

// TestSearchPathDecidedWhenWeaviateComesUp: a Store made while Weaviate was
// down keeps gRPC pending; the first Ready that reaches the REST endpoint
// while the gRPC one does not answer switches to GraphQL with the one
// warning, and the Store works (before, it kept gRPC and was never ready).
func TestSearchPathDecidedWhenWeaviateComesUp(t *testing.T) {
	t.Parallel()
	rest, err := devstack.StartTCPProxy(strings.TrimPrefix(shared.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rest.Close() })
	rest.SetDown(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	var logs bytes.Buffer
	st := newStoreAt(t, shared, true, func(c *Config) {
		c.URL, c.GRPCAddr, c.DialTimeout, c.Logger = rest.URL(), closed, 300*time.Millisecond, zerolog.New(&logs)
	})
	ctx := testCtx(t, 30*time.Second)
	if err := st.Ready(ctx); err == nil {
		t.Fatal("Ready with Weaviate down: nil")
	}
	if st.SearchPath() != "grpc" || strings.Contains(logs.String(), `"level":"warn"`) {
		t.Fatalf("while Weaviate is down: path %s, logs %s; want grpc pending, no warning", st.SearchPath(), logs.String())
	}
	rest.SetDown(false)
	if err := st.Ready(ctx); err != nil {
		t.Fatalf("Ready once REST answers and gRPC does not: %v", err)
	}
	if st.SearchPath() != "graphql" {
		t.Errorf("path %s, want graphql", st.SearchPath())
	}
	if n := strings.Count(logs.String(), `"level":"warn"`); n != 1 || !strings.Contains(logs.String(), "WEAVIATE_GRPC_ADDR") {
		t.Errorf("%d warnings: %s; want one naming WEAVIATE_GRPC_ADDR", n, logs.String())
	}
	chat := chatID(t)
	if err := st.Put(ctx, event.Event{EventID: "e1", ChatID: chat, Role: event.RoleUser, Text: "hello there", SentAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.History(ctx, chat, event.RoleUser, time.Now(), 5); err != nil {
		t.Errorf("history over GraphQL: %v", err)
	}
}
