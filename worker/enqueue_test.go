package main_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/logtest"
)

// TestEnqueueLongInput sends a long input through the binary: all sent,
// progress on stderr at most once a second (sent, rejected, rate), and
// nothing else there. The input is a named pipe, as `worker enqueue
// <(zcat events.jsonl.gz)` reads one: the test writes half the events,
// waits for the first progress line, then writes the rest, so progress is
// seen on any machine, not only one slow enough to take over a second.
// (It sent 20,000 events from a file, and on a fast machine could have
// finished within the second; on this one it took 40-90 s, mostly kumo's:
// on each FIFO send it walks every deduplication id the queue holds.)
func TestEnqueueLongInput(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	const n = 5000 // 500 calls of ten, 500 chats: every lane's buffer fills
	events := func(from, to int) []byte {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, `{"event_id":"e-%d","chat_id":"%s","text":"hello %d","sent_at":"2026-11-28T10:00:00Z"}`+"\n", i, e.ChatID(fmt.Sprint(i%500)), i)
		}
		return []byte(b.String())
	}
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if err := syscall.Mkfifo(file, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-write: the open waits for no reader (Linux), and the worker's
	// open for reading waits for no writer. The worker reads EOF once it is
	// closed. A write that nobody reads ends at its deadline.
	in, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.SetWriteDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(workerBin, "enqueue", file)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, e.Environ()...)
	var stdout bytes.Buffer
	stderr := logtest.NewLogs()
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	start := time.Now()
	p := startProcess(t, cmd)
	go func() { <-p.Done(); stderr.Write(nil) }() // wakes the Wait below if it exits first
	if _, err := in.Write(events(0, n/2)); err != nil {
		t.Fatalf("write the first half: %v", err)
	}
	stderr.Wait(t, time.Minute, "a progress line", func(ls []logtest.Line) bool { return len(ls) > 0 || p.ExitCode() != -1 })
	if code := p.ExitCode(); code != -1 {
		t.Fatalf("enqueue exited %d before the end of its input: stdout %q, stderr %v", code, stdout.String(), stderr.Lines())
	}
	if _, err := in.Write(events(n/2, n)); err != nil {
		t.Fatalf("write the second half: %v", err)
	}
	in.Close()
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("enqueue still running 2 minutes after its input ended")
	}
	took := time.Since(start)
	t.Logf("enqueue of %d events took %v", n, took)
	var lines []string
	for _, l := range stderr.Lines() {
		lines = append(lines, l.Raw)
	}
	if code := p.ExitCode(); code != 0 || stdout.String() != fmt.Sprintf("sent %d, rejected 0\n", n) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), lines)
	}
	progress := regexp.MustCompile(`^progress: sent \d+, rejected 0, \d+ events/s$`)
	for _, l := range lines {
		if !progress.MatchString(l) {
			t.Errorf("stderr line %q is not a progress line", l)
		}
	}
	if len(lines) > int(took/time.Second)+1 || len(lines) == 0 {
		t.Errorf("%d progress lines in %v, want one a second", len(lines), took)
	}
	if got := e.QueueDepth(t, e.InputURL); got != n {
		t.Errorf("input queue holds %d, want %d", got, n)
	}
}

// TestEnqueueCapsRejectsAndReportsDuplicates: at most 100 rejected lines
// shown, then how many more; a repeated event_id names the first line.
func TestEnqueueCapsRejectsAndReportsDuplicates(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	chat := e.ChatID("c")
	in := fmt.Sprintf(`{"event_id":"e-1","chat_id":"%s","type":"mute"}`+"\n", chat) + strings.Repeat("not json\n", 150) +
		fmt.Sprintf(`{"event_id":"e-1","chat_id":"%s","type":"unmute"}`+"\n", chat)
	r := worker(t, e.Environ(), in, "enqueue")
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 1 || r.stdout != "sent 1, rejected 151\n" || len(lines) != 101 ||
		!strings.HasPrefix(lines[0], "line 2: invalid_json") || lines[100] != "… and 51 more rejected lines not shown (151 rejected in all)" {
		t.Errorf("exit %d, stdout %q, %d stderr lines, first %q, last %q", r.code, r.stdout, len(lines), lines[0], lines[len(lines)-1])
	}

	r = worker(t, e.Environ(), fmt.Sprintf(`{"event_id":"d-1","chat_id":"%s","type":"mute"}`+"\n", chat)+
		fmt.Sprintf(`{"event_id":"d-1","chat_id":"%s","type":"unmute"}`+"\n", chat), "enqueue", "-")
	if r.code != 1 || r.stdout != "sent 1, rejected 1\n" || r.stderr != "line 2: duplicate_event_id: event_id \"d-1\" is on line 1 already\n" {
		t.Errorf("duplicate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestEnqueueRefusesWhatIsNotJSONLines: a directory and a binary file (the
// worker itself) are refused with one line and exit 2 before anything is
// sent or counted.
func TestEnqueueRefusesWhatIsNotJSONLines(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	for name, arg := range map[string]string{"directory": t.TempDir(), "binary": workerBin} {
		r := worker(t, e.Environ(), "", "enqueue", arg)
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, arg) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want one line naming it and exit 2", name, r.code, r.stdout, r.stderr)
		}
	}
	if n := e.QueueDepth(t, e.InputURL); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

// TestEnqueueChecksItsInputBeforeConnecting: with no credentials and no
// endpoint at all, a binary file is still refused for what it is, not for
// the missing credentials: the input is checked before SQS is reached.
func TestEnqueueChecksItsInputBeforeConnecting(t *testing.T) {
	t.Parallel()
	r := worker(t, []string{"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}, "", "enqueue", workerBin)
	if r.code != 2 || !strings.Contains(r.stderr, "a NUL byte") || strings.Contains(r.stderr, "AWS_") {
		t.Errorf("exit %d, stderr %q; want exit 2 and the binary input named, nothing about AWS", r.code, r.stderr)
	}
}
