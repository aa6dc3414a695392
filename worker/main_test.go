package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack/stacktest"
)

// workerBin is the worker binary built once for this test binary: the tests
// drive it exactly as users and external tests do.
var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chatprep-worker-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	if out, err := exec.Command("go", "build", "-race", "-o", workerBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build worker: %v\n%s", err, out)
		os.Exit(1)
	}
	stacktest.Main(m, func() { os.RemoveAll(dir) })
}

type result struct {
	code           int
	stdout, stderr string
}

// worker runs the binary with exactly env (plus PATH) and stdin.
func worker(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("worker %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

// TestBadConfigurationExits2 checks every command refuses a bad value at
// start with one line naming the variable, and exit status 2.
func TestBadConfigurationExits2(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"run", "setup", "enqueue", "healthcheck"} {
		for _, tc := range []struct{ env, name string }{
			{"POOL_SIZE=many", "POOL_SIZE"},
			{"VISIBILITY_TIMEOUT=30", "VISIBILITY_TIMEOUT"},
			{"INPUT_QUEUE=no spaces allowed", "INPUT_QUEUE"},
			{"LOG_LEVEL=chatty", "LOG_LEVEL"},
		} {
			t.Run(cmd+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := worker(t, []string{tc.env}, "", cmd)
				if r.code != 2 {
					t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], tc.name) {
					t.Errorf("stderr %q: want one line naming %s", r.stderr, tc.name)
				}
			})
		}
	}
	t.Run("flag overrides a good environment with a bad value", func(t *testing.T) {
		t.Parallel()
		r := worker(t, nil, "", "setup", "--task-timeout", "soon")
		if r.code != 2 || !strings.Contains(r.stderr, "TASK_TIMEOUT") {
			t.Errorf("exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		t.Parallel()
		r := worker(t, nil, "", "run", "--pool", "3")
		if r.code != 2 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("unknown command", func(t *testing.T) {
		t.Parallel()
		r := worker(t, nil, "", "serve")
		if r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
			t.Errorf("exit %d stderr %q", r.code, r.stderr)
		}
	})
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	t.Parallel()
	r := worker(t, nil, "", "--help")
	if r.code != 0 {
		t.Fatalf("--help exit %d", r.code)
	}
	for _, want := range []string{"run", "setup", "enqueue", "healthcheck", "version", "INPUT_QUEUE", "POOL_SIZE", "ROUTES_FILE"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, cmd := range []string{"run", "setup", "enqueue", "healthcheck"} {
		r := worker(t, nil, "", cmd, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: worker "+cmd) || !strings.Contains(r.stdout, "--input-queue") && !strings.Contains(r.stdout, "INPUT_QUEUE") {
			t.Errorf("%s --help: exit %d\n%s", cmd, r.code, r.stdout)
		}
	}
	if r := worker(t, []string{"WEAVIATE_API_KEY=hunter2"}, "", "run", "--help"); strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Error("--help shows the API key")
	}
	if r := worker(t, nil, "", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "chatprep worker ") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
}

// TestSetupIsIdempotent runs `worker setup` against the real stack: first
// it creates, then twice in a row and from two processes at once it changes
// nothing and fails nothing.
func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.NoSetup())
	env := e.Environ()
	first := worker(t, env, "", "setup")
	if first.code != 0 {
		t.Fatalf("first setup: exit %d\n%s%s", first.code, first.stdout, first.stderr)
	}
	if strings.Count(first.stdout, "created") != 3 || !strings.Contains(first.stdout, "Weaviate collections") {
		t.Errorf("first setup output:\n%s", first.stdout)
	}
	second := worker(t, env, "", "setup")
	if second.code != 0 || strings.Count(second.stdout, "unchanged") != 3 {
		t.Errorf("second setup: exit %d\n%s%s", second.code, second.stdout, second.stderr)
	}
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Go(func() { res[i] = worker(t, env, "", "setup") })
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 || strings.Count(r.stdout, "unchanged") != 3 {
			t.Errorf("concurrent setup %d: exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
	}
}

// TestSetupFromScratchConcurrently: two processes create the same queues at
// the same moment; both succeed.
func TestSetupFromScratchConcurrently(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.NoSetup())
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Go(func() { res[i] = worker(t, e.Environ(), "", "setup") })
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("setup %d: exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
	}
}

// TestEnqueueSamples sends the project's sample events through the binary:
// the valid ones go out, each invalid line is named with its reason, exit 1.
func TestEnqueueSamples(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	samples, err := filepath.Abs("../samples/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	r := worker(t, e.Environ(), "", "enqueue", samples)
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (the samples hold invalid lines)", r.code)
	}
	if strings.TrimSpace(r.stdout) != "sent 46, rejected 5" {
		t.Errorf("stdout %q", r.stdout)
	}
	for _, want := range []string{"invalid_json", "missing_field: chat_id", "invalid_field: sent_at", "invalid_field: role", "invalid_field: event_id"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "line 7: ") {
		t.Errorf("rejected lines are not numbered:\n%s", r.stderr)
	}

	// From stdin, all valid: exit 0.
	r = worker(t, e.Environ(), `{"event_id":"x-1","chat_id":"`+e.ChatID("a")+`","type":"mute"}`+"\n", "enqueue")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "sent 1, rejected 0" {
		t.Errorf("stdin: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestEnqueueToAMissingQueueSaysRunSetup(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.NoSetup())
	r := worker(t, e.Environ(), `{"event_id":"x-1","chat_id":"c","type":"mute"}`, "enqueue")
	if r.code != 2 || !strings.Contains(r.stderr, "INPUT_QUEUE") || !strings.Contains(r.stderr, "worker setup") {
		t.Errorf("exit %d stderr %q", r.code, r.stderr)
	}
}
