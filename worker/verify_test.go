package main_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/store"
)

// TestVerifyFindsAndRepairsAGap runs `worker verify` against a real gap in
// Weaviate's index (devstack.CrashLosingLog: a SIGKILL that loses the
// chat_id index's log of the last writes, the objects all kept): it prints
// each message the searches miss and exits 1; --chat limits it to one chat;
// --repair reindexes them and exits 0; a second run finds nothing.
func TestVerifyFindsAndRepairsAGap(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	w, st, env := ownWeaviate(t, ctx, devstack.HoldWritesEnv...)
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	put := func(chat, id string, role event.Role, text string) {
		t.Helper()
		if err := st.Put(ctx, event.Event{EventID: id, ChatID: chat, Role: role, Text: text, SentAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	put("old-chat", "o1", event.RoleUser, "hello from before")
	put("old-chat", "o2", event.RoleAssistant, "hi there")
	put("gap-chat", "g1", event.RoleUser, "Where is order S00042?")
	put("gap-chat", "g2", event.RoleAssistant, "It ships tomorrow.")
	put("gap-chat", "g3", event.RoleUser, "ok 👍")
	st.Close()
	if n, err := w.CrashLosingLog(ctx, store.MessagesCollection, "chat_id"); err != nil || n == 0 {
		t.Fatalf("crash losing the chat_id log: %d logs, %v", n, err)
	}

	r := worker(t, env, "", "verify")
	findings, last := verifyOutput(t, r.stdout)
	if r.code != 1 || len(findings) != 5 || last != "checked 5 messages in 2 chats, missing 5, repaired 0" {
		t.Fatalf("verify on a gap: exit %d, %d findings, last line %q\nstdout:\n%s\nstderr:\n%s", r.code, len(findings), last, r.stdout, r.stderr)
	}
	for _, f := range findings {
		if f["repaired"] != nil || !strings.Contains(strings.Join(asStrings(f["missing"]), ","), "history") {
			t.Errorf("finding %v: want the history filter missing it, no repair", f)
		}
	}
	if !strings.Contains(r.stderr, "done: scanned 5 objects") {
		t.Errorf("stderr lacks the closing progress line:\n%s", r.stderr)
	}

	r = worker(t, env, "", "verify", "--repair", "--chat", "gap-chat")
	findings, last = verifyOutput(t, r.stdout)
	if r.code != 0 || len(findings) != 3 || last != "checked 3 messages in 1 chats, missing 3, repaired 3" {
		t.Fatalf("verify --repair --chat gap-chat: exit %d, last line %q\n%s%s", r.code, last, r.stdout, r.stderr)
	}
	for _, f := range findings {
		if f["chat_id"] != "gap-chat" || f["repaired"] != true {
			t.Errorf("finding %v: want gap-chat's, repaired", f)
		}
	}
	if r := worker(t, env, "", "verify", "--chat", "gap-chat"); r.code != 0 || !strings.HasSuffix(r.stdout, "checked 3 messages in 1 chats, missing 0, repaired 0\n") {
		t.Errorf("verify --chat gap-chat after its repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := worker(t, env, "", "verify", "--chat", "old-chat"); r.code != 1 || !strings.HasSuffix(r.stdout, "checked 2 messages in 1 chats, missing 2, repaired 0\n") {
		t.Errorf("verify --chat old-chat, not repaired yet: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := worker(t, env, "", "verify", "--repair"); r.code != 0 || !strings.HasSuffix(r.stdout, "missing 2, repaired 2\n") {
		t.Errorf("verify --repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := worker(t, env, "", "verify"); r.code != 0 || !strings.HasSuffix(r.stdout, "checked 5 messages in 2 chats, missing 0, repaired 0\n") {
		t.Errorf("verify after the repairs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// verifyOutput splits verify's stdout into its JSON findings and its last
// line.
func verifyOutput(t *testing.T, out string) ([]map[string]any, string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var findings []map[string]any
	for _, l := range lines[:len(lines)-1] {
		var f map[string]any
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("not a JSON finding: %q", l)
		}
		findings = append(findings, f)
	}
	return findings, lines[len(lines)-1]
}

func asStrings(v any) []string {
	var out []string
	xs, _ := v.([]any)
	for _, x := range xs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// ownWeaviate starts a Weaviate server of the test's own (with the extra
// server variables env), for a test that takes every chat's messages or
// breaks the server; it returns the server, a store on it with the
// collections created, and the environment a worker command needs for
// it. Both are stopped when the test ends.
func ownWeaviate(t *testing.T, ctx context.Context, env ...string) (*devstack.Weaviate, *store.Store, []string) {
	t.Helper()
	return ownWeaviateOf(t, ctx, 0, env...)
}

// ownWeaviateOf is ownWeaviate with the messages collection made with
// store.Config.Tenants tenants: 0 for today's default, negative for a
// collection without tenants (as made before them).
func ownWeaviateOf(t *testing.T, ctx context.Context, tenants int, env ...string) (*devstack.Weaviate, *store.Store, []string) {
	t.Helper()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{Env: env})
	st, err := store.New(store.Config{URL: w.URL, GRPCAddr: w.GRPCAddr, Tenants: tenants})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	return w, st, []string{"WEAVIATE_URL=" + w.URL, "WEAVIATE_GRPC_ADDR=" + w.GRPCAddr}
}
