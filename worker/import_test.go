package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/store/storetest"
)

// history is a chat's past messages as an export would hold them: user
// and assistant in turn, one minute apart from at.
func history(chat, prefix string, n int, at time.Time) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		out[i] = map[string]any{
			"event_id": fmt.Sprintf("%s-%04d", prefix, i), "chat_id": chat, "role": role,
			"text":    fmt.Sprintf("message %d about pallet %d and the weekly delivery", i, i%7),
			"sent_at": at.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
		}
	}
	return out
}

// jsonLines writes events as JSON lines.
func jsonLines(evs ...[]map[string]any) string {
	var b strings.Builder
	for _, list := range evs {
		for _, ev := range list {
			line, err := json.Marshal(ev)
			if err != nil {
				panic(err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func weaviateOf(e *stacktest.Env) storetest.Reader {
	return storetest.Reader{URL: e.Vars["WEAVIATE_URL"]}
}

// TestImportThenTheWorkerUsesIt imports chats' history through the binary:
// the valid lines are stored, each invalid one is named (a mute, a line
// that is no JSON, a repeat); importing again changes nothing. A worker then
// gives a new event of an imported chat the imported messages as history
// and relevant context, and an imported event received again stays one
// object.
func TestImportThenTheWorkerUsesIt(t *testing.T) {
	t.Parallel()
	// TASK_TIMEOUT well past any search here: the checks below need the
	// history and relevance tasks answered, and at the default 2s a loaded
	// machine (make test: -race, every package beside it) can time one out
	// and degrade the result (as TestRunMetricsExact allows for).
	e := stacktest.New(t, stacktest.With("LOG_LEVEL", "info", "TASK_TIMEOUT", "1m"))
	w := weaviateOf(e)
	at := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	chats := []string{e.ChatID("a"), e.ChatID("b"), e.ChatID("c")}
	var all [][]map[string]any
	for i, chat := range chats {
		all = append(all, history(chat, fmt.Sprintf("h%d", i), 40, at))
	}
	// A message only the new event's question is about.
	all[0][17]["text"] = "The forklift battery warranty covers eighteen months"
	bad := []string{
		`{"event_id":"m-1","chat_id":"` + chats[0] + `","type":"mute"}`,
		`not json`,
		jsonLines(all[1][:1]), // a repeat of line 41
	}
	file := writeFile(t, "history.jsonl", jsonLines(all...)+strings.Join(bad, "\n")+"\n")

	for run := range 2 {
		r := worker(t, e.Environ(), "", "import", file)
		if r.code != 1 || r.stdout != "imported 120, rejected 3\n" {
			t.Fatalf("import run %d: exit %d, stdout %q, want 1 and imported 120, rejected 3\n%s", run, r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"line 121: invalid_field: type", "line 122: invalid_json", "line 123: duplicate_event_id: event_id \"h1-0000\" of chat", "is on line 41 already", "messages/s"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("import run %d: stderr lacks %q:\n%s", run, want, r.stderr)
			}
		}
		for _, chat := range chats {
			if n := w.Stored(t, chat); n != 40 {
				t.Fatalf("import run %d: chat %s holds %d messages, want 40", run, chat, n)
			}
		}
	}
	if props := w.Object(t, chats[0], "h0-0001"); props["role"] != "assistant" || props["chat_terms"] == "" || props["tokens_o200k_base"] == nil {
		t.Errorf("imported assistant message: %v; want its role, terms and token count as a worker stores them", props)
	}

	_, logs, _ := runWorker(t, e)
	question := stacktest.Event(map[string]any{"event_id": "q-1", "chat_id": chats[0],
		"text": "How long is the forklift battery warranty?", "sent_at": at.Add(24 * time.Hour).Format(time.RFC3339)})
	again := stacktest.Event(all[0][38]) // an imported user message, received now
	e.Send(t, question, again)
	results := map[string]contracttest.Result{}
	for _, r := range e.Results(t, 2, time.Minute) {
		results[r.EventID] = r
	}
	logs.Wait(t, time.Minute, "both events handled", func(ls []logtest.Line) bool {
		return logtest.Count(ls, logtest.Preprocessed, "") == 2
	})
	q := results["q-1"]
	if len(q.Degraded) != 0 {
		t.Errorf("the new event's result is degraded: %+v", q.Degraded)
	}
	hist := contracttest.IDs(q.History)
	if !slices.Contains(hist, "h0-0039") || !slices.Contains(hist, "h0-0038") {
		t.Errorf("history of the new event %v: want the imported h0-0038 and h0-0039", hist)
	}
	if rel := contracttest.IDs(q.Relevant); !slices.Contains(rel, "h0-0017") {
		t.Errorf("relevant of the new event %v: want the imported h0-0017 (the warranty)", rel)
	}
	if n := w.Stored(t, chats[0]); n != 41 {
		t.Errorf("chat holds %d messages after the new event and an imported one received again, want 41", n)
	}
}

// TestImportResumes interrupts an import reading a pipe (SIGINT once the
// lines written so far are done): it says up to which line everything is
// done and how to resume; `--skip N` then imports the rest, and the chat
// holds every message once.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	chat := e.ChatID("long")
	lines := history(chat, "h", 3000, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
	const first = 1200
	file := writeFile(t, "history.jsonl", jsonLines(lines))

	cmd := exec.Command(workerBin, "import")
	cmd.Env = e.Environ()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stderr := newWaitBuffer()
	cmd.Stdout, cmd.Stderr = &out, stderr
	p := startProcess(t, cmd)
	if _, err := io.WriteString(stdin, jsonLines(lines[:first])); err != nil {
		t.Fatal(err)
	}
	done := fmt.Sprintf("lines 1-%d done", first)
	stderr.wait(t, time.Minute, done)
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Minute):
		t.Fatal("import still runs a minute after SIGINT")
	}
	raw := stderr.String()
	m := regexp.MustCompile(`to resume: worker import --skip (\d+) `).FindStringSubmatch(raw)
	if p.ExitCode() != 1 || m == nil || out.String() != fmt.Sprintf("imported %d, rejected 0\n", first) {
		t.Fatalf("interrupted import: exit %d, stdout %q, want 1, imported %d and a resume line\n%s", p.ExitCode(), out.String(), first, raw)
	}
	if skip, _ := strconv.Atoi(m[1]); skip != first {
		t.Fatalf("resume with --skip %d, want %d (every line written was done)", skip, first)
	}

	r := worker(t, e.Environ(), "", "import", "--skip", m[1], file)
	if r.code != 0 || r.stdout != fmt.Sprintf("imported %d, rejected 0\n", len(lines)-first) || !strings.Contains(r.stderr, "skipped the first 1200 lines") {
		t.Fatalf("resumed import: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	if n := weaviateOf(e).Stored(t, chat); n != len(lines) {
		t.Errorf("chat holds %d messages after the resumed import, want %d", n, len(lines))
	}
}

// TestForgetAChat erases one chat through the binary: a dry run counts and
// removes nothing; the erase removes every message and the whole muted
// state, which a direct read of Weaviate confirms, and leaves another chat
// as it was.
func TestForgetAChat(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	w := weaviateOf(e)
	gone, kept := e.ChatID("gone"), e.ChatID("kept")
	at := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	if r := worker(t, e.Environ(), jsonLines(history(gone, "g", 30, at), history(kept, "k", 30, at)), "import"); r.code != 0 {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	st, err := store.New(store.Config{URL: e.Vars["WEAVIATE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, chat := range []string{gone, kept} {
		for i, typ := range []event.Type{event.TypeMute, event.TypeUnmute} {
			if err := st.SetMuted(t.Context(), event.Event{EventID: fmt.Sprint("s-", i), ChatID: chat, Type: typ, SentAt: at.Add(time.Duration(i) * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	state := func(chat string) int {
		t.Helper()
		n, err := w.CountIn(t.Context(), store.StateCollection, chat)
		if err != nil {
			t.Fatal(err)
		}
		head, err := w.Exists(t.Context(), store.StateCollection, store.StateID(chat))
		if err != nil {
			t.Fatal(err)
		}
		if head {
			n++
		}
		return n
	}

	r := worker(t, e.Environ(), "", "forget", "--chat", gone, "--dry-run")
	if want := "would remove 30 messages and 3 state objects of chat " + gone + " (dry run: nothing removed)\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("dry run: exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
	}
	if n := w.Stored(t, gone); n != 30 || state(gone) != 3 {
		t.Fatalf("after the dry run: %d messages, %d state objects; want all kept", n, state(gone))
	}
	r = worker(t, e.Environ(), "", "forget", "--chat", gone)
	if want := "removed 30 messages and 3 state objects of chat " + gone + "; 0 left\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("forget: exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
	}
	if n := w.Stored(t, gone); n != 0 {
		t.Errorf("%d messages of the forgotten chat left", n)
	}
	if n := state(gone); n != 0 {
		t.Errorf("%d state objects of the forgotten chat left", n)
	}
	if props := w.Object(t, gone, "g-0000"); props != nil {
		t.Errorf("a forgotten message is still there by its id: %v", props)
	}
	if n := w.Stored(t, kept); n != 30 || state(kept) != 3 {
		t.Errorf("the other chat: %d messages, %d state objects; want 30 and 3", n, state(kept))
	}
	r = worker(t, e.Environ(), "", "forget", "--chat", gone)
	if r.code != 0 || r.stdout != "removed 0 messages and 0 state objects of chat "+gone+"; 0 left\n" {
		t.Errorf("forget again: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := worker(t, e.Environ(), "", "forget"); r.code != 2 || !strings.Contains(r.stderr, "--chat") {
		t.Errorf("forget without a chat or an age: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
	if r := worker(t, e.Environ(), "", "forget", "--older-than", "soon"); r.code != 2 || !strings.Contains(r.stderr, "--older-than") {
		t.Errorf("forget --older-than soon: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
}

// TestRetentionRemovesExactlyTheOlder: on a Weaviate of its own (retention
// takes every chat's messages), for each layout of the messages collection
// (64 tenants; none, as made before them), `worker forget --older-than`
// removes the messages sent before the age, of one chat with --chat, then
// of every chat, and keeps each newer message and the muted state. Chats a
// and b share a tenant (10 of 64), c is in another (34): one chat's
// retention leaves its tenant's other chat alone, and every chat's walks
// the tenants.
func TestRetentionRemovesExactlyTheOlder(t *testing.T) {
	t.Parallel()
	for _, layout := range []struct {
		name    string
		tenants int
	}{{"tenants", 0}, {"without tenants", -1}} {
		t.Run(layout.name, func(t *testing.T) {
			t.Parallel()
			retentionOf(t, layout.tenants)
		})
	}
}

func retentionOf(t *testing.T, tenants int) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	wv, st, env := ownWeaviateOf(t, ctx, tenants)
	chats := []string{"a", "b", "c"}
	// Message k of each chat was sent k days and an hour ago.
	now := time.Now()
	var lines []map[string]any
	for _, chat := range chats {
		for k := range 10 {
			lines = append(lines, map[string]any{"event_id": fmt.Sprintf("d%d", k), "chat_id": chat, "text": "hello",
				"sent_at": now.Add(-time.Duration(k)*24*time.Hour - time.Hour).Format(time.RFC3339)})
		}
		if err := st.SetMuted(ctx, event.Event{EventID: "mute", ChatID: chat, Type: event.TypeMute, SentAt: now.Add(-30 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if r := worker(t, env, jsonLines(lines), "import"); r.code != 0 {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w := storetest.Reader{URL: wv.URL}
	left := func(chat string) []string {
		t.Helper()
		var out []string
		for k := range 10 {
			if w.Object(t, chat, fmt.Sprintf("d%d", k)) != nil {
				out = append(out, fmt.Sprintf("d%d", k))
			}
		}
		return out
	}
	days := func(from, to int) string {
		var out []string
		for k := from; k < to; k++ {
			out = append(out, fmt.Sprintf("d%d", k))
		}
		return fmt.Sprint(out)
	}

	r := worker(t, env, "", "forget", "--older-than", "5d", "--chat", "a", "--dry-run")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "would remove 5 messages of chat a sent before ") {
		t.Fatalf("dry run: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = worker(t, env, "", "forget", "--older-than", "5d", "--chat", "a")
	if r.code != 0 || !regexp.MustCompile(`^removed 5 messages of chat a sent before \S+ \(older than 5d\); 0 left\n$`).MatchString(r.stdout) {
		t.Fatalf("retention of chat a: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	if got := fmt.Sprint(left("a")); got != days(0, 5) {
		t.Errorf("chat a keeps %s, want %s", got, days(0, 5))
	}
	for _, chat := range chats[1:] {
		if got := fmt.Sprint(left(chat)); got != days(0, 10) {
			t.Errorf("chat %s keeps %s, want all", chat, got)
		}
	}
	r = worker(t, env, "", "forget", "--older-than", "72h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "removed 16 messages of every chat sent before ") || !strings.HasSuffix(r.stdout, "; 0 left\n") {
		t.Fatalf("retention of every chat: exit %d, stdout %q, want 2+7+7 removed\n%s", r.code, r.stdout, r.stderr)
	}
	for _, chat := range chats {
		if got := fmt.Sprint(left(chat)); got != days(0, 3) {
			t.Errorf("chat %s keeps %s, want %s", chat, got, days(0, 3))
		}
		if muted, err := st.Muted(ctx, chat, now); err != nil || !muted {
			t.Errorf("chat %s muted %v, %v: retention keeps the state", chat, muted, err)
		}
	}
}

// waitBuffer is a writer whose content a test can wait for.
type waitBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWaitBuffer() *waitBuffer { return &waitBuffer{changed: make(chan struct{})} }

func (w *waitBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
	return w.buf.Write(p)
}

func (w *waitBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns once the content holds want, and fails t after timeout.
func (w *waitBuffer) wait(t *testing.T, timeout time.Duration, want string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		has, changed := strings.Contains(w.buf.String(), want), w.changed
		w.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %q within %v:\n%s", want, timeout, w.String())
		}
	}
}
