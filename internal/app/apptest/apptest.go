// Package apptest holds what the whole-worker tests share that belongs to
// no other test package: the project's sample chats (Samples), sent into a
// test's namespace (Sample.Namespaced), and a worker's /debug/vars
// (DebugVars). Package app's tests (the worker in process) use both; the
// worker binary's and the chaos suite's read /debug/vars.
//
// The rest of what those tests share lives by concern: the test's queues —
// sending events, reading results and dead letters — on its stack
// environment (stacktest.Env); the worker's log lines in logtest; what
// Weaviate stored in storetest; the contract oracle in contracttest.
package apptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
)

// Sample is one line of samples/events.jsonl.
type Sample struct {
	Line int    // 1-based
	Raw  string // as in the file
	// Fields is the line as a JSON object; nil when it is not one.
	Fields map[string]any
}

// Samples reads the project's sample chats.
func Samples(t testing.TB) []Sample {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "samples", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Sample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		s := Sample{Line: n, Raw: sc.Text()}
		if json.Unmarshal(sc.Bytes(), &s.Fields) != nil {
			s.Fields = nil
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Namespaced is the sample as sent into e's namespace: its chat id becomes
// e.ChatID(chat id). A line that is not a JSON object is sent as it is, in
// a group of its own.
func (s Sample) Namespaced(e *stacktest.Env) stacktest.Msg {
	if s.Fields == nil {
		return stacktest.Msg{Body: s.Raw, Group: e.ChatID("unparsable"), Dedup: fmt.Sprintf("line-%d", s.Line)}
	}
	f := make(map[string]any, len(s.Fields))
	for k, v := range s.Fields {
		f[k] = v
	}
	if chat, ok := f["chat_id"].(string); ok {
		f["chat_id"] = e.ChatID(chat)
	}
	m := stacktest.Event(f)
	if m.Group == "" {
		m.Group = e.ChatID("no-chat")
	}
	if _, ok := f["event_id"].(string); !ok || !validDedup(m.Dedup) {
		m.Dedup = fmt.Sprintf("line-%d", s.Line)
	}
	return m
}

// validDedup tells whether SQS accepts id as a deduplication id.
func validDedup(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < '!' || r > '~' {
			return false
		}
	}
	return true
}

// DebugVars reads a worker's /debug/vars at addr (its HEALTH_ADDR).
func DebugVars(addr string) (map[string]any, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/debug/vars")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/debug/vars: status %d", resp.StatusCode)
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("/debug/vars: %w", err)
	}
	return v, nil
}
