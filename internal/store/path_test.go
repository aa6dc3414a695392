package store

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
