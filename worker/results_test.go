package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/logtest"
)

// resultLines decodes `worker results` output: one result object a line,
// with the contract's keys (superseded_by when set: these tests send each
// chat's messages as a burst).
func resultLines(t *testing.T, out string) []event.Result {
	t.Helper()
	var rs []event.Result
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields, err := logtest.DecodeStrict(sc.Text())
		if err != nil {
			t.Fatalf("results line %q: %v", sc.Text(), err)
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			if !slices.Contains(contracttest.OptionalKeys, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, slices.Sorted(slices.Values(contracttest.Keys))) {
			t.Errorf("result keys %v", keys)
		}
		var r event.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func eventIDs(rs []event.Result) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.EventID)
	}
	slices.Sort(ids)
	return ids
}

// TestResults: `worker results` waits for the first result, prints what
// the worker published one object a line, and gives every one back, so a
// second run (and the real consumer) sees them all again; --max bounds it;
// with --delete they are gone afterwards. (On an empty queue:
// TestResultsOnAnEmptyQueue.)
func TestResults(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.With("LOG_LEVEL", "info"))
	var want []string
	var msgs []stacktest.Msg
	for c := range 2 {
		for i := range 3 {
			id := fmt.Sprintf("c%d-e%d", c, i)
			msgs = append(msgs, userEvent(e.ChatID(fmt.Sprintf("c%d", c)), id, i))
			want = append(want, id)
		}
	}
	slices.Sort(want)

	// Started before there is anything to read: it waits for the first.
	waiting := exec.Command(workerBin, "results", "--wait", "1m", "--max", "1")
	waiting.Env = e.Environ()
	var waitOut, waitErr bytes.Buffer
	waiting.Stdout, waiting.Stderr = &waitOut, &waitErr
	wp := startProcess(t, waiting)
	_, logs, _ := runWorker(t, e)
	e.Send(t, msgs...)
	select {
	case <-wp.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("results --wait 1m still waiting 2 minutes later")
	}
	if code := wp.ExitCode(); code != 0 || len(resultLines(t, waitOut.String())) != 1 {
		t.Fatalf("results waiting for the first: exit %d\n%s%s", code, waitOut.String(), waitErr.String())
	}
	logs.Wait(t, time.Minute, "every result published", func(ls []logtest.Line) bool {
		return logtest.Count(ls, logtest.Preprocessed, "") == len(msgs)
	})

	for run := range 2 {
		r := worker(t, e.Environ(), "", "results")
		if got := eventIDs(resultLines(t, r.stdout)); r.code != 0 || !slices.Equal(got, want) {
			t.Fatalf("results run %d: exit %d, results %v, want %v\n%s", run, r.code, got, want, r.stderr)
		}
	}
	if r := worker(t, e.Environ(), "", "results", "--max", "2"); r.code != 0 || len(resultLines(t, r.stdout)) != 2 {
		t.Errorf("--max 2: exit %d\n%s", r.code, r.stdout)
	}
	// --attributes: each result with the attributes the worker gave it.
	r := worker(t, e.Environ(), "", "results", "--attributes", "--wait", "1")
	var withAttrs []string
	for line := range strings.Lines(r.stdout) {
		var l struct {
			Body       json.RawMessage
			Attributes map[string]string
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("results --attributes line %q: %v", line, err)
		}
		rs := resultLines(t, string(l.Body)+"\n")
		if _, _, ok := contracttest.TraceParent(l.Attributes["traceparent"]); !ok || len(rs) != 1 || l.Attributes["event_id"] != rs[0].EventID ||
			l.Attributes["chat_id"] != rs[0].ChatID || l.Attributes["route"] != rs[0].Route {
			t.Errorf("results --attributes line %s", line)
		}
		withAttrs = append(withAttrs, rs[0].EventID)
	}
	if slices.Sort(withAttrs); r.code != 0 || !slices.Equal(withAttrs, want) {
		t.Errorf("results --attributes: exit %d, results %v, want %v\n%s", r.code, withAttrs, want, r.stderr)
	}
	r = worker(t, e.Environ(), "", "results", "--delete", "--max", "100")
	if got := eventIDs(resultLines(t, r.stdout)); r.code != 0 || !slices.Equal(got, want) {
		t.Fatalf("results --delete: exit %d, results %v\n%s", r.code, got, r.stderr)
	}
	if n := e.QueueDepth(t, e.ResponseURL); n != 0 {
		t.Errorf("%d results left after --delete", n)
	}
}

// TestResultsOnAnEmptyQueue: on an empty queue `worker results` waits
// about --wait (a duration, or seconds) and prints nothing; --wait 0 is the
// shortest poll there is (a second), not the queue's 20 s. The three read
// the same empty queue at once: each only waits.
func TestResultsOnAnEmptyQueue(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	for _, wait := range []string{"2s", "2"} {
		t.Run("--wait "+wait, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := worker(t, e.Environ(), "", "results", "--wait", wait)
			if took := time.Since(start); r.code != 0 || r.stdout != "" || took < 1500*time.Millisecond || took > 30*time.Second {
				t.Errorf("results --wait %s on an empty queue: exit %d in %v, stdout %q, stderr %q; want nothing after about 2s", wait, r.code, took, r.stdout, r.stderr)
			}
		})
	}
	t.Run("--wait 0", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		r := worker(t, e.Environ(), "", "results", "--wait", "0")
		// The queue's own wait is 20 s: a run that fell back to it takes
		// longer than that, whatever the load. 15 s leaves a -race process
		// on a loaded machine room to start and stop around its 1-s poll.
		if took := time.Since(start); r.code != 0 || r.stdout != "" || took > 15*time.Second {
			t.Errorf("results --wait 0 on an empty queue: exit %d in %v, stdout %q, stderr %q", r.code, took, r.stdout, r.stderr)
		}
	})
}
