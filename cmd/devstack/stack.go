package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/chatprep/chatprep/internal/devstack"
)

var devstackRepoRoot = devstack.RepoRoot

// session is a started stack plus the worker environment for it.
type session struct {
	stack *devstack.Stack
	env   []string // KEY=VALUE for worker processes
}

// startStack starts the stack and runs `worker setup` against it.
func startStack(ctx context.Context, o options) (*session, error) {
	if _, err := os.Stat(o.worker); err != nil {
		return nil, fmt.Errorf("worker binary %s: %w (run make build)", o.worker, err)
	}
	st, err := devstack.Start(ctx, devstack.Options{BinDir: filepath.Join(o.root, "bin"), Progress: o.out})
	if err != nil {
		return nil, err
	}
	s := &session{stack: st, env: append(st.Env(),
		"PATH="+os.Getenv("PATH"),
		"HOME="+os.Getenv("HOME"),
		"HEALTH_ADDR=127.0.0.1:0", // a free port: never collide with another worker
	)}
	fmt.Fprintln(o.out, "worker setup:")
	cmd := exec.CommandContext(ctx, o.worker, "setup")
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	fmt.Fprint(o.out, indent(string(out)))
	if err != nil {
		s.stop(o)
		return nil, fmt.Errorf("worker setup: %w", err)
	}
	return s, nil
}

func (s *session) stop(o options) {
	if err := s.stack.Stop(); err != nil {
		fmt.Fprintln(o.errOut, "devstack: stop:", err)
		return
	}
	fmt.Fprintln(o.out, "stack stopped: Weaviate ended, data directory removed, emulator closed")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func up(ctx context.Context, o options) error {
	s, err := startStack(ctx, o)
	if err != nil {
		return err
	}
	defer s.stop(o)
	fmt.Fprintf(o.out, `
chatprep's local stack is up. In another shell, from the repository:

  export %s
  bin/worker run                              # consume (Ctrl-C drains and exits)
  bin/worker enqueue samples/events.jsonl     # send the sample events

Ctrl-C here stops the stack (Weaviate pid %d) and removes its data.
`, strings.Join(exportable(s.env), " \\\n         "), s.stack.Weaviate.Pid())
	<-ctx.Done()
	fmt.Fprintln(o.out, "\nstopping…")
	return nil
}

// exportable drops PATH and HOME from env.
func exportable(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return out
}
