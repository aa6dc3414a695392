package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/chatprep/chatprep/internal/config"
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
	st, err := devstack.Start(ctx, devstack.Options{BinDir: filepath.Join(o.root, "bin"), Progress: o.out, Tracing: o.tracing, WeaviateDefaults: o.weaviateDefaults})
	if err != nil {
		return nil, err
	}
	health, err := freeAddr()
	if err != nil {
		st.Stop()
		return nil, err
	}
	s := &session{stack: st, env: append(st.Env(),
		"PATH="+os.Getenv("PATH"),
		"HOME="+os.Getenv("HOME"),
		// A port free now, printed as it is: worker run serves on it and
		// worker healthcheck asks it.
		"HEALTH_ADDR="+health,
	)}
	if st.Jaeger != nil {
		// For devstack trace (the worker does not read it).
		s.env = append(s.env, jaegerURLVar+"="+st.Jaeger.QueryURL)
	}
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

// freeAddr is a loopback address whose port is free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for HEALTH_ADDR: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func up(ctx context.Context, o options) error {
	s, err := startStack(ctx, o)
	if err != nil {
		return err
	}
	defer s.stop(o)
	env := exportable(s.env)
	if err := writeEnvFile(o.envFile, env); err != nil {
		return err
	}
	defer os.Remove(o.envFile)
	shown := o.envFile
	if rel, err := filepath.Rel(o.root, o.envFile); err == nil && !strings.HasPrefix(rel, "..") {
		shown = rel
	}
	cfg := config.Defaults()
	fmt.Fprintf(o.out, `
chatprep's local stack is up. Its environment is in %[1]s; in each other
shell, from the repository:

  . %[1]s
  bin/worker run                               # one shell: consume (Ctrl-C drains and exits)
  bin/worker enqueue samples/events.jsonl      # another: send the sample events
  bin/worker healthcheck                       # is the worker ready?
  bin/worker results                           # the first results, left on the queue
  bin/worker results --attributes              # the same, each with its message attributes (traceparent, …)
  bin/worker results --max 100 --delete        # every result, taken off the queue
  bin/worker dlq list                          # dead letters, left in the queue

The environment, to export by hand instead:

  export %[2]s

Queues: %[3]s (input), %[4]s (dead letters), %[5]s (results).
With the AWS CLI, pass --endpoint-url "$AWS_ENDPOINT_URL" (not every CLI
version reads the variable); it takes the region from AWS_DEFAULT_REGION.
kumo's queue URLs say localhost:4566, but the calls go to that endpoint:
  aws --endpoint-url "$AWS_ENDPOINT_URL" sqs get-queue-attributes --attribute-names All \
    --queue-url "$(aws --endpoint-url "$AWS_ENDPOINT_URL" sqs get-queue-url --queue-name %[5]s --query QueueUrl --output text)"

%[7]sCtrl-C here stops the stack (Weaviate pid %[6]d), removes its data and %[1]s.
`, shown, strings.Join(env, " \\\n         "), cfg.InputQueue, cfg.DLQQueue, cfg.ResponseQueue, s.stack.Weaviate.Pid(), tracingHelp(s.stack))
	<-ctx.Done()
	fmt.Fprintln(o.out, "\nstopping…")
	return nil
}

// tracingHelp says where the traces are, with --tracing.
func tracingHelp(st *devstack.Stack) string {
	if st.Jaeger == nil {
		return ""
	}
	return fmt.Sprintf(`Traces go to Jaeger (pid %d): OTLP/HTTP at %s, query API at %s
(in %s too). This Jaeger has no web UI (a module build cannot embed it);
draw a trace with

  bin/devstack trace --jaeger "$%s" TRACE_ID

where TRACE_ID is the trace_id of an event's log line or a result's
traceparent; or the first result's trace, from the results:

  bin/worker results --max 1 --attributes | bin/devstack trace --jaeger "$%s" -

`, st.Jaeger.Pid(), st.Jaeger.OTLPURL, st.Jaeger.QueryURL, jaegerURLVar, jaegerURLVar, jaegerURLVar)
}

// writeEnvFile writes env as a shell file of export lines, to source.
func writeEnvFile(path string, env []string) error {
	var b strings.Builder
	b.WriteString("# chatprep's local stack (devstack up); removed when it stops. Source it in a shell: . " + path + "\n")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write the environment file: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write the environment file: %w", err)
	}
	return nil
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@=+,") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// exportable is env without PATH and HOME, with AWS_DEFAULT_REGION (the
// AWS CLI's region variable) next to AWS_REGION.
func exportable(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
		if v, ok := strings.CutPrefix(kv, "AWS_REGION="); ok {
			out = append(out, "AWS_DEFAULT_REGION="+v)
		}
	}
	return out
}
