package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/logtest"
)

// quickstart is the README's local quick start: the shell commands after
// each "<!-- quickstart: NAME -->" marker, by NAME, a command continued
// with a trailing backslash joined into one.
func quickstart(t *testing.T, readme string, names ...string) map[string][]string {
	t.Helper()
	blocks := map[string][]string{}
	re := regexp.MustCompile("(?s)<!-- quickstart: ([a-z-]+) -->\n```sh\n(.*?)```")
	for _, m := range re.FindAllStringSubmatch(readme, -1) {
		blocks[m[1]] = append(blocks[m[1]], joinContinued(strings.Split(strings.TrimSpace(m[2]), "\n"))...)
	}
	for _, name := range names {
		if len(blocks[name]) == 0 {
			t.Fatalf("README has no quick start block %q", name)
		}
	}
	return blocks
}

// joinContinued joins shell lines ending in a backslash with the next.
func joinContinued(lines []string) []string {
	var out []string
	cont := false
	for _, l := range lines {
		if cont {
			out[len(out)-1] += " " + strings.TrimSpace(l)
		} else {
			out = append(out, l)
		}
		cont = strings.HasSuffix(out[len(out)-1], `\`)
		if cont {
			out[len(out)-1] = strings.TrimSpace(strings.TrimSuffix(out[len(out)-1], `\`))
		}
	}
	return out
}

// command is a quick start line without its comment.
func command(line string) string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// want is what a quick start line must do: its exit status and, of its
// stdout, whatever stdout checks.
type want struct {
	code   int
	stdout func(out string) bool
	retry  bool // until it passes, as someone typing would see it do
}

// quick runs the README's quick start as written, each shell its own
// process: the stack from `devstack up` (what make up runs, from binaries
// built for the test), the worker, and the tools, each sourcing the
// environment file the stack wrote. Only bin/worker, bin/devstack and the
// file's place are swapped for the test's own, `aws` is Debian's aws-cli
// 2.9.19 (first on PATH), and HOME is a directory of the test's, so the
// CLI reads no configuration of the machine's. The worker's shell also has
// SHUTDOWN_TIMEOUT=5s (see up).
type quick struct {
	t                            *testing.T
	root                         string
	worker, stack, envFile, home string
	env                          []string
	blocks                       map[string][]string
}

func newQuick(t *testing.T, names ...string) *quick {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	q := &quick{t: t, root: root, blocks: quickstart(t, string(readme), names...),
		worker: workerBin, stack: devstackBin, envFile: filepath.Join(dir, "devstack.env"),
		home: filepath.Join(dir, "home")}
	cli, err := devstack.RepoAWSCLI(t.Context(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "path")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cli, filepath.Join(path, "aws")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(q.home, 0o755); err != nil {
		t.Fatal(err)
	}
	q.env = append(os.Environ(), "PATH="+path+":"+os.Getenv("PATH"), "HOME="+q.home)
	return q
}

// shell is line as the test runs it.
func (q *quick) shell(line string) string {
	line = strings.ReplaceAll(line, "tmp/devstack.env", q.envFile)
	line = strings.ReplaceAll(line, "bin/devstack", q.stack)
	return strings.ReplaceAll(line, "bin/worker", q.worker)
}

// start starts script in a shell of its own, with q.env and env.
func (q *quick) start(script string, env ...string) (*devstack.Process, *logtest.Logs) {
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir, cmd.Env = q.root, append(slices.Clip(q.env), env...)
	logs := logtest.NewLogs()
	cmd.Stdout, cmd.Stderr = logs, logs
	p, err := devstack.StartProcess(cmd)
	if err != nil {
		q.t.Fatal(err)
	}
	q.t.Cleanup(func() {
		if p.ExitCode() == -1 {
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.Done()
		}
	})
	return p, logs
}

// stop sends p Ctrl-C (SIGINT to its process group) and returns its exit
// status.
func (q *quick) stop(name string, p *devstack.Process) int {
	q.t.Helper()
	if err := syscall.Kill(-p.Pid(), syscall.SIGINT); err != nil {
		q.t.Fatalf("stop %s: %v", name, err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Minute):
		q.t.Fatalf("%s still runs a minute after Ctrl-C", name)
	}
	return p.ExitCode()
}

// up starts the stack block (`make up`, or `make up TRACING=1`) as
// devstack up, and the worker block, and waits until the worker consumes.
// It returns the stack's output; both are stopped with Ctrl-C at the end
// of the test, and must exit 0 and leave no environment file.
func (q *quick) up(stackBlock string) *logtest.Logs {
	t := q.t
	args := map[string]string{"make up": "", "make up TRACING=1": " --tracing"}
	flag, ok := args[strings.Join(q.blocks[stackBlock], "\n")]
	if !ok {
		t.Fatalf("the %s block is %q; this test runs what make up runs", stackBlock, q.blocks[stackBlock])
	}
	has := func(s string) func([]logtest.Line) bool {
		return func(ls []logtest.Line) bool {
			for _, l := range ls {
				if strings.Contains(l.Raw, s) {
					return true
				}
			}
			return false
		}
	}
	up, upOut := q.start(fmt.Sprintf("exec %s up --worker %s --env-file %s%s", q.stack, q.worker, q.envFile, flag))
	upOut.Wait(t, 5*time.Minute, "the stack up", has("local stack is up"))
	if _, err := os.Stat(q.envFile); err != nil {
		t.Fatalf("make up wrote no environment file: %v", err)
	}
	// SHUTDOWN_TIMEOUT as in every test stack (stacktest): the Ctrl-C at
	// the end waits for a poll of at most 4 s, not for the 20-s poll the
	// README warns of; what is checked of the stop (exit 0) is the same.
	w, wOut := q.start(q.shell(strings.Join(q.blocks["worker"], "\n")), "SHUTDOWN_TIMEOUT=5s")
	t.Cleanup(func() { // what the worker said, when the test fails
		if t.Failed() {
			for _, l := range wOut.Lines() {
				t.Log("worker: " + l.Raw)
			}
		}
	})
	// The same bound as the stack's: under make test the worker starts
	// while every other package's tests load the 2 cores (one CI run
	// waited out a minute here; alone it takes seconds).
	wOut.Wait(t, 5*time.Minute, "the worker consuming", has(`"worker consuming"`))
	t.Cleanup(func() {
		if code := q.stop("the worker", w); code != 0 {
			t.Errorf("the worker exited %d after Ctrl-C", code)
		}
		if code := q.stop("make up", up); code != 0 {
			t.Errorf("devstack up exited %d after Ctrl-C", code)
		}
		if _, err := os.Stat(q.envFile); !os.IsNotExist(err) {
			t.Errorf("the environment file is still there after the stack stopped: %v", err)
		}
	})
	return upOut
}

// run runs each line of the tools shell after sourcing the environment
// file; expect says what each line must do, and every line must be one it
// knows, so the README cannot drift from the test.
func (q *quick) run(lines []string, expect func(cmd string) (want, bool)) {
	t := q.t
	for _, line := range lines {
		cmdline := command(line)
		exp, ok := expect(cmdline)
		if !ok {
			t.Errorf("the README's quick start runs %q, which this test does not know", cmdline)
			continue
		}
		deadline := time.Now().Add(time.Minute)
		for {
			c := exec.Command("bash", "-c", q.shell(". tmp/devstack.env\n"+cmdline))
			c.Dir, c.Env = q.root, q.env
			var out, errb bytes.Buffer
			c.Stdout, c.Stderr = &out, &errb
			err := c.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code == exp.code && exp.stdout(out.String()) {
				t.Logf("$ %s\n%.1500s%.600s", cmdline, out.String(), errb.String())
				break
			}
			if !exp.retry || time.Now().After(deadline) {
				t.Errorf("$ %s: exit %d\nstdout:\n%sstderr:\n%s", cmdline, code, out.String(), errb.String())
				break
			}
		}
	}
}

func lines(n int) func(string) bool {
	return func(out string) bool { return strings.Count(out, "\n") >= n }
}

func exactly(s string) func(string) bool { return func(out string) bool { return out == s } }

// jsonWith decodes out into v and reports check(v).
func jsonWith[T any](check func(T) bool) func(string) bool {
	return func(out string) bool {
		var v T
		return json.Unmarshal([]byte(out), &v) == nil && check(v)
	}
}

// TestReadmeQuickStart runs the README's local quick start as written:
// `make up`, the worker in a second shell, and in a third the worker's
// tools, then the AWS CLI examples (with Debian's aws-cli 2.9.19, which
// speaks SQS's query protocol) and the AWS CLI example `make up` prints.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	q := newQuick(t, "stack", "worker", "tools", "aws")
	upOut := q.up("stack")

	tools := map[string]want{
		". tmp/devstack.env":                      {stdout: exactly("")},
		"bin/worker healthcheck":                  {stdout: exactly("ready\n"), retry: true},
		"bin/worker enqueue samples/events.jsonl": {code: 1, stdout: exactly("sent 46, rejected 5\n")},
		"bin/worker results --max 5":              {stdout: lines(1), retry: true}, // waits 5 s for the first: the worker's first result may take longer on a loaded machine
		"bin/worker results --max 100 --delete":   {stdout: lines(1)},
		"bin/worker dlq list":                     {stdout: exactly("")},
		"bin/worker dlq redrive --dry-run":        {stdout: exactly("redriven 0, skipped 0\n")},
	}
	q.run(q.blocks["tools"], func(cmd string) (want, bool) { w, ok := tools[cmd]; return w, ok })

	sum := md5.Sum([]byte("not json"))
	q.run(q.blocks["aws"], func(cmd string) (want, bool) {
		switch {
		case strings.HasPrefix(cmd, "aws ") && strings.Contains(cmd, " sqs send-message --message-body 'not json' "):
			return want{stdout: jsonWith(func(v struct{ MessageId, MD5OfMessageBody string }) bool {
				return v.MessageId != "" && v.MD5OfMessageBody == hex.EncodeToString(sum[:])
			})}, true
		case cmd == "bin/worker dlq list":
			return want{retry: true, stdout: func(out string) bool {
				return strings.Contains(out, `"error_code":"invalid_json"`) && strings.Contains(out, `"body":"not json"`)
			}}, true
		case strings.HasPrefix(cmd, "aws ") && strings.Contains(cmd, " sqs get-queue-attributes --attribute-names ApproximateNumberOfMessages "):
			return want{stdout: jsonWith(func(v struct{ Attributes map[string]string }) bool {
				return len(v.Attributes) == 1 && v.Attributes["ApproximateNumberOfMessages"] == "1"
			})}, true
		}
		return want{}, false
	})

	// The example make up prints.
	var printed []string
	for _, l := range upOut.Lines() {
		if s := strings.TrimSpace(l.Raw); strings.HasPrefix(s, "aws ") || len(printed) > 0 && strings.HasSuffix(printed[len(printed)-1], `\`) {
			printed = append(printed, s)
		}
	}
	printed = joinContinued(printed)
	if len(printed) != 1 {
		t.Fatalf("make up printed %d AWS CLI examples, want one: %q", len(printed), printed)
	}
	q.run(printed, func(cmd string) (want, bool) {
		return want{stdout: jsonWith(func(v struct{ Attributes map[string]string }) bool {
			return strings.HasSuffix(v.Attributes["QueueArn"], ":chat-context.fifo") && v.Attributes["FifoQueue"] == "true"
		})}, strings.Contains(cmd, "sqs get-queue-attributes --attribute-names All ")
	})
}

// TestReadmeTraceQuickStart runs the README's quick start of a result's
// trace: `make up TRACING=1`, the worker, and the tools that follow the
// first result's traceparent to its trace in Jaeger.
func TestReadmeTraceQuickStart(t *testing.T) {
	t.Parallel()
	q := newQuick(t, "trace-stack", "worker", "trace")
	q.up("trace-stack")
	waterfall := regexp.MustCompile(`^trace [0-9a-f]{32}: \d+ spans, 1 service, `)
	q.run(q.blocks["trace"], func(cmd string) (want, bool) {
		switch cmd {
		case ". tmp/devstack.env":
			return want{stdout: exactly("")}, true
		case "bin/worker enqueue samples/events.jsonl":
			return want{code: 1, stdout: exactly("sent 46, rejected 5\n")}, true
		case "bin/worker results --max 1 --attributes":
			return want{retry: true, stdout: jsonWith(func(v struct {
				Body struct {
					EventID string `json:"event_id"`
				}
				Attributes map[string]string
			}) bool {
				_, _, ok := contracttest.TraceParent(v.Attributes["traceparent"])
				return ok && v.Body.EventID != "" && v.Attributes["event_id"] == v.Body.EventID
			})}, true
		case `bin/worker results --max 1 --attributes | bin/devstack trace --jaeger "$DEVSTACK_JAEGER_URL" -`:
			return want{stdout: func(out string) bool {
				return waterfall.MatchString(out) && strings.Contains(out, "process chat-events.fifo") &&
					strings.Contains(out, "send chat-context.fifo")
			}}, true
		}
		return want{}, false
	})
}
