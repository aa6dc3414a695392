package main

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

	"github.com/chatprep/chatprep/internal/app/apptest"
	"github.com/chatprep/chatprep/internal/devstack"
)

// quickstart is the README's local quick start: the shell blocks after
// each "<!-- quickstart: NAME -->" marker, by NAME.
func quickstart(t *testing.T, readme string) map[string][]string {
	t.Helper()
	blocks := map[string][]string{}
	re := regexp.MustCompile("(?s)<!-- quickstart: ([a-z]+) -->\n```sh\n(.*?)```")
	for _, m := range re.FindAllStringSubmatch(readme, -1) {
		blocks[m[1]] = append(blocks[m[1]], strings.Split(strings.TrimSpace(m[2]), "\n")...)
	}
	for _, name := range []string{"stack", "worker", "tools"} {
		if len(blocks[name]) == 0 {
			t.Fatalf("README has no quick start block %q", name)
		}
	}
	return blocks
}

// command is a quick start line without its comment.
func command(line string) string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// TestReadmeQuickStart runs the README's local quick start as written, one
// command at a time, each shell its own: `make up` (devstack up, from
// binaries built for the test, which is what make up runs), the worker
// in a second shell, and the tools in a third, each sourcing the
// environment file the stack wrote. Only bin/worker and the file's place
// are swapped for the test's own. Every tools line must be one the test
// knows what to expect of, so the README cannot drift from it.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
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
	blocks := quickstart(t, string(readme))
	if got := strings.Join(blocks["stack"], "\n"); got != "make up" {
		t.Fatalf("the stack block is %q; this test runs what make up runs", got)
	}

	dir := t.TempDir()
	worker, stack, envFile := filepath.Join(dir, "worker"), filepath.Join(dir, "devstack"), filepath.Join(dir, "devstack.env")
	for bin, pkg := range map[string]string{worker: "./worker", stack: "./cmd/devstack"} {
		build := exec.Command("go", "build", "-race", "-o", bin, pkg)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	shell := func(line string) string {
		line = strings.ReplaceAll(line, "tmp/devstack.env", envFile)
		return strings.ReplaceAll(line, "bin/worker", worker)
	}
	start := func(name string, script string) (*devstack.Process, *apptest.Logs) {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = root
		logs := apptest.NewLogs()
		cmd.Stdout, cmd.Stderr = logs, logs
		p, err := devstack.StartProcess(cmd)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if p.ExitCode() == -1 {
				_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
				<-p.Done()
			}
		})
		return p, logs
	}
	has := func(s string) func([]apptest.Line) bool {
		return func(ls []apptest.Line) bool {
			for _, l := range ls {
				if strings.Contains(l.Raw, s) {
					return true
				}
			}
			return false
		}
	}
	stop := func(name string, p *devstack.Process) int {
		t.Helper()
		if err := syscall.Kill(-p.Pid(), syscall.SIGINT); err != nil {
			t.Fatalf("stop %s: %v", name, err)
		}
		select {
		case <-p.Done():
		case <-time.After(time.Minute):
			t.Fatalf("%s still runs a minute after Ctrl-C", name)
		}
		return p.ExitCode()
	}

	// Shell 1: make up.
	up, upOut := start("make up", fmt.Sprintf("exec %s up --worker %s --env-file %s", stack, worker, envFile))
	upOut.Wait(t, 5*time.Minute, "the stack up", has("local stack is up"))
	if _, err := os.Stat(envFile); err != nil {
		t.Fatalf("make up wrote no environment file: %v", err)
	}

	// Shell 2: the worker.
	w, wOut := start("worker", shell(strings.Join(blocks["worker"], "\n")))
	wOut.Wait(t, time.Minute, "the worker consuming", has(`"worker consuming"`))

	// Shell 3: the tools, line by line.
	type want struct {
		code   int
		stdout func(out string) bool
		retry  bool // until it passes, as someone typing would see it do
	}
	lines := func(n int) func(string) bool {
		return func(out string) bool { return strings.Count(out, "\n") >= n }
	}
	expect := map[string]want{
		". tmp/devstack.env":                      {stdout: func(out string) bool { return out == "" }},
		"bin/worker healthcheck":                  {stdout: func(out string) bool { return out == "ready\n" }, retry: true},
		"bin/worker enqueue samples/events.jsonl": {code: 1, stdout: func(out string) bool { return out == "sent 46, rejected 5\n" }},
		"bin/worker results --max 5":              {stdout: lines(1)},
		"bin/worker results --max 100 --delete":   {stdout: lines(1)},
		"bin/worker dlq list":                     {stdout: func(out string) bool { return out == "" }},
		"bin/worker dlq redrive --dry-run":        {stdout: func(out string) bool { return out == "redriven 0, skipped 0\n" }},
	}
	for _, line := range blocks["tools"] {
		cmdline := command(line)
		exp, ok := expect[cmdline]
		if !ok {
			t.Errorf("the README's quick start runs %q, which this test does not know", cmdline)
			continue
		}
		deadline := time.Now().Add(time.Minute)
		for {
			c := exec.Command("bash", "-c", shell(". tmp/devstack.env\n"+cmdline))
			c.Dir = root
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
				t.Logf("$ %s\n%.600s%.600s", cmdline, out.String(), errb.String())
				break
			}
			if !exp.retry || time.Now().After(deadline) {
				t.Errorf("$ %s: exit %d\nstdout:\n%sstderr:\n%s", cmdline, code, out.String(), errb.String())
				break
			}
		}
	}

	if code := stop("the worker", w); code != 0 {
		t.Errorf("the worker exited %d after Ctrl-C", code)
	}
	if code := stop("make up", up); code != 0 {
		t.Errorf("devstack up exited %d after Ctrl-C", code)
	}
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Errorf("the environment file is still there after the stack stopped: %v", err)
	}
}
