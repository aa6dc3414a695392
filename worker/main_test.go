package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/testflags"
)

// workerBin is the worker binary built once for this test binary: the tests
// drive it exactly as users and external tests do.
var workerBin string

func TestMain(m *testing.M) {
	// These tests wait, on worker processes, kumo, Weaviate and Jaeger,
	// far more than they compute: 8 at once (108 s against 42 s for the
	// package, side by side).
	if _, err := testflags.DefaultParallel(8); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "chatprep-worker-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	if err := devstack.BuildRepoPackage(workerBin, "./worker", true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stacktest.Main(m, func() { os.RemoveAll(dir) })
}

type result struct {
	code           int
	stdout, stderr string
}

// startProcess starts cmd, and kills it when the test ends if it still runs.
func startProcess(t *testing.T, cmd *exec.Cmd) *devstack.Process {
	t.Helper()
	p, err := devstack.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.ExitCode() == -1 {
			p.Kill()
		}
	})
	return p
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

// TestBadConfigurationExits2 checks every command refuses a bad value of a
// variable it reads at start with one line naming the variable, and exit
// status 2; a variable it does not read does not stop it.
func TestBadConfigurationExits2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cmd  []string
		envs []string
	}{
		{[]string{"run"}, []string{"POOL_SIZE=many", "VISIBILITY_TIMEOUT=30", "INPUT_QUEUE=no spaces allowed", "LOG_LEVEL=chatty"}},
		{[]string{"setup"}, []string{"VISIBILITY_TIMEOUT=30", "INPUT_QUEUE=no spaces allowed", "AWS_REGION=Mars"}},
		{[]string{"enqueue"}, []string{"INPUT_QUEUE=no spaces allowed", "AWS_ENDPOINT_URL=localhost"}},
		{[]string{"healthcheck"}, []string{"HEALTH_ADDR=8081"}},
		{[]string{"results"}, []string{"RESPONSE_QUEUE=no spaces allowed"}},
		{[]string{"dlq", "list"}, []string{"DLQ_QUEUE=no spaces allowed"}},
		{[]string{"dlq", "redrive"}, []string{"INPUT_QUEUE=no spaces allowed", "DLQ_QUEUE=dlq-not-fifo"}},
		{[]string{"import"}, []string{"WEAVIATE_URL=localhost:8080"}},
		{[]string{"forget", "--chat", "c"}, []string{"WEAVIATE_URL=localhost:8080"}},
	} {
		for _, kv := range tc.envs {
			name, _, _ := strings.Cut(kv, "=")
			t.Run(strings.Join(tc.cmd, "-")+"/"+name, func(t *testing.T) {
				t.Parallel()
				r := worker(t, []string{kv}, "", tc.cmd...)
				if r.code != 2 {
					t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], name) {
					t.Errorf("stderr %q: want one line naming %s", r.stderr, name)
				}
				if tc.cmd[0] != "run" {
					return
				}
				// worker run writes only JSON lines, this one too.
				m, err := logtest.DecodeStrict(lines[0])
				if err != nil {
					t.Fatalf("worker run's configuration error %q: %v", lines[0], err)
				}
				problems, _ := m["problems"].([]any)
				if m["level"] != "error" || len(problems) != 1 || !strings.Contains(fmt.Sprint(problems[0]), name) {
					t.Errorf("worker run's configuration error %v: want level error and problems naming %s", m, name)
				}
			})
		}
	}
	t.Run("a variable the command does not read", func(t *testing.T) {
		t.Parallel()
		r := worker(t, []string{"POOL_SIZE=many", "HEALTH_ADDR=127.0.0.1:1"}, "", "healthcheck")
		if r.code != 1 || strings.Contains(r.stderr, "POOL_SIZE") {
			t.Errorf("healthcheck with a bad POOL_SIZE and nothing listening: exit %d, stderr %q; want 1, about the endpoint", r.code, r.stderr)
		}
	})
	t.Run("flag overrides a good environment with a bad value", func(t *testing.T) {
		t.Parallel()
		r := worker(t, nil, "", "setup", "--visibility-timeout", "soon")
		if r.code != 2 || !strings.Contains(r.stderr, "VISIBILITY_TIMEOUT") {
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
	for _, want := range []string{"run", "setup", "enqueue", "results", "dlq list", "dlq redrive", "verify", "import", "forget", "healthcheck", "version", "INPUT_QUEUE", "POOL_SIZE", "ROUTES_FILE"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if r := worker(t, []string{"WEAVIATE_API_KEY=hunter2"}, "", "run", "--help"); strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Error("--help shows the API key")
	}
}

// TestEachCommandsHelpListsItsFlagsAndOnlyItsVariables: `worker CMD
// --help` shows the command's own flags with their defaults, and the
// variables it reads (flag, variable, default) and no other.
func TestEachCommandsHelpListsItsFlagsAndOnlyItsVariables(t *testing.T) {
	t.Parallel()
	sqs := []string{"AWS_REGION", "AWS_ENDPOINT_URL", "SQS_VERIFY_CHECKSUMS"}
	all := []string{"AWS_REGION", "AWS_ENDPOINT_URL", "INPUT_QUEUE", "DLQ_QUEUE", "RESPONSE_QUEUE", "MAX_RECEIVE_COUNT",
		"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR", "POOL_SIZE", "MAX_IN_FLIGHT", "RECEIVERS", "VISIBILITY_TIMEOUT",
		"TASK_TIMEOUT", "SHUTDOWN_TIMEOUT", "HISTORY_LIMIT", "RELEVANCE_LIMIT", "RELEVANCE_NEIGHBOURS", "CONTEXT_TOKEN_BUDGET", "TOKEN_ENCODING", "BURST_GAP",
		"ROUTE_CARRY", "REFERENCES_LIMIT", "METRICS_NAMESPACE", "METRICS_ENABLED",
		"METRICS_FLUSH_INTERVAL", "METRICS_TIMESTAMPS", "SQS_VERIFY_CHECKSUMS", "HEALTH_ADDR", "LOG_LEVEL", "ROUTES_FILE"}
	for _, tc := range []struct {
		cmd   []string
		flags []string // as shown, with their defaults
		vars  []string
	}{
		{[]string{"run"}, nil, all},
		{[]string{"setup"}, nil, append([]string{"INPUT_QUEUE", "DLQ_QUEUE", "RESPONSE_QUEUE", "MAX_RECEIVE_COUNT", "VISIBILITY_TIMEOUT",
			"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR"}, sqs...)},
		{[]string{"enqueue"}, []string{"--concurrency N", "(default 8)"}, append([]string{"INPUT_QUEUE"}, sqs...)},
		{[]string{"results"}, []string{"--max N", "(default 10)", "--wait D", "(default 5s)", "--delete", "--attributes"}, append([]string{"RESPONSE_QUEUE"}, sqs...)},
		{[]string{"dlq", "list"}, []string{"--max N", "(default 10)"}, append([]string{"DLQ_QUEUE"}, sqs...)},
		{[]string{"dlq", "redrive"}, []string{"--max N", "--dry-run", "--all"}, append([]string{"INPUT_QUEUE", "DLQ_QUEUE"}, sqs...)},
		{[]string{"verify"}, []string{"--chat ID", "--repair"}, []string{"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR"}},
		{[]string{"import"}, []string{"--skip N", "--batch-size N", "(default 500)", "--concurrency N", "(default 4)"}, []string{"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR", "TOKEN_ENCODING"}},
		{[]string{"forget"}, []string{"--chat ID", "--older-than D", "--dry-run"}, []string{"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR"}},
		{[]string{"healthcheck"}, nil, []string{"HEALTH_ADDR"}},
		{[]string{"version"}, nil, nil},
	} {
		t.Run(strings.Join(tc.cmd, "-"), func(t *testing.T) {
			t.Parallel()
			r := worker(t, nil, "", append(tc.cmd, "--help")...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: worker "+strings.Join(tc.cmd, " ")) {
				t.Fatalf("exit %d\n%s", r.code, r.stdout)
			}
			for _, f := range tc.flags {
				if !strings.Contains(r.stdout, f) {
					t.Errorf("lacks %q:\n%s", f, r.stdout)
				}
			}
			for _, v := range all {
				want := slices.Contains(tc.vars, v)
				row := regexp.MustCompile(`(?m)^  --` + strings.ToLower(strings.ReplaceAll(v, "_", "-")) + ` +` + v + ` `)
				if row.MatchString(r.stdout) != want {
					t.Errorf("lists %s: %v, want %v:\n%s", v, !want, want, r.stdout)
				}
			}
		})
	}
}

// TestVersionAndArguments: --version and version print the version;
// unexpected arguments are a usage error (exit 2) for every command.
func TestVersionAndArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		if r := worker(t, nil, "", args...); r.code != 0 || !strings.HasPrefix(r.stdout, "chatprep worker ") {
			t.Errorf("%v: exit %d %q %q", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"setup", "extra"}, {"version", "extra"}, {"run", "extra"}, {"healthcheck", "x"},
		{"results", "x"}, {"dlq", "list", "x"}, {"dlq", "redrive", "x"}, {"enqueue", "a.jsonl", "b.jsonl"},
		{"import", "a.jsonl", "b.jsonl"}, {"forget", "--chat", "c", "x"}} {
		r := worker(t, nil, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "unexpected argument") || r.stdout != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q; want 2 and unexpected argument", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"dlq"}, {"dlq", "purge"}} {
		if r := worker(t, nil, "", args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
	}
	if r := worker(t, nil, "", "dlq", "--help"); r.code != 0 || !strings.Contains(r.stdout, "worker dlq redrive") {
		t.Errorf("dlq --help: exit %d\n%s", r.code, r.stdout)
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

// TestToolsStartupErrorsNameTheVariable: the operator's commands explain
// an endpoint nothing answers at, or missing credentials, as worker run
// does: one line naming the variable to fix, exit 2, nothing else done.
func TestToolsStartupErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	creds := []string{"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_EC2_METADATA_DISABLED=true", "HOME=" + t.TempDir()}
	for _, cmd := range [][]string{{"results"}, {"dlq", "list"}, {"dlq", "redrive"}, {"enqueue"}} {
		for _, tc := range []struct {
			env  []string
			name string
		}{
			{append([]string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, creds...), "AWS_ENDPOINT_URL"},
			{[]string{"AWS_EC2_METADATA_DISABLED=true", "HOME=" + t.TempDir()}, "AWS_ACCESS_KEY_ID"},
		} {
			t.Run(strings.Join(cmd, "-")+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := worker(t, tc.env, `{"event_id":"e","chat_id":"c","type":"mute"}`, cmd...)
				if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, ": "+tc.name+": ") {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line naming %s", r.code, r.stdout, r.stderr, tc.name)
				}
			})
		}
	}
}
