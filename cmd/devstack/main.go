// Command devstack runs chatprep on the embedded local stack — the kumo AWS
// emulator in process and a real Weaviate server process — with nothing but
// Go installed.
//
//	devstack up     start the stack, create the queues and collections, print
//	                the environment for a worker and write it to a file to
//	                source in other shells (tmp/devstack.env), wait for Ctrl-C
//	devstack demo   the main job end to end: stack, `worker setup`, a worker,
//	                the sample events enqueued, every result printed as it
//	                arrives, a summary, and a clean stop
//	devstack trace  draw one trace from a Jaeger's query API as a waterfall
//
// With --tracing, up and demo also run Jaeger (built into bin/ the first
// time) and send the worker's traces to it; the demo ends with one message's
// trace.
//
// The worker runs as its own process (bin/worker), configured only through
// its environment, exactly as in production. Everything started is stopped by
// pid and every temporary directory removed on exit or Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `devstack — chatprep on the embedded local stack (no Docker needed).

Usage:
  devstack up [--worker PATH] [--env-file F] [--tracing] [--weaviate-defaults]
                                                         start the stack, print its environment and write it to F
                                                         (default tmp/devstack.env, to source); Ctrl-C stops it
  devstack demo [--worker PATH] [--events F] [--tracing] [--weaviate-defaults]
                                                         run the main job end to end on the sample events
  devstack trace [--jaeger URL] TRACE                      draw a trace from Jaeger's query API: TRACE is its id, a
                                                         traceparent, or - for the first line of worker results
                                                         --attributes on stdin; URL defaults to $DEVSTACK_JAEGER_URL

The stack: kumo (SQS and CloudWatch) in this process on a free loopback port,
and a Weaviate server process on free ports with a temporary data directory.
The first run builds the Weaviate server into bin/ (a few minutes).
--tracing adds Jaeger (OTLP/HTTP in, its query API out, memory storage) and
points the worker's OTEL_EXPORTER_OTLP_ENDPOINT at it; the first run builds
it into bin/ (a few minutes). This Jaeger has no web UI (a module build
cannot embed it): devstack trace draws a trace in the terminal instead.
Weaviate runs with memtables flushed every few seconds (devstack.TunedEnv);
--weaviate-defaults runs it with Weaviate's own memtable settings instead, as
Weaviate Cloud and most self-hosted clusters run.
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(stderr, "devstack:", err)
		return 1
	}
	fs := flag.NewFlagSet("devstack "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	worker := fs.String("worker", filepath.Join(root, "bin", "worker"), "the worker binary (make build puts it in bin/)")
	events := fs.String("events", filepath.Join(root, "samples", "events.jsonl"), "chat events to enqueue (demo)")
	verbose := fs.Bool("v", false, "show the worker's own log lines (demo)")
	envFile := fs.String("env-file", filepath.Join(root, "tmp", "devstack.env"), "where up writes the environment, to source in other shells (removed on stop)")
	tracing := fs.Bool("tracing", false, "also run Jaeger and send the worker's traces to it (up, demo)")
	weaviateDefaults := fs.Bool("weaviate-defaults", false, "run Weaviate with its own memtable settings, not the stack's tuned ones (up, demo)")
	jaeger := fs.String("jaeger", os.Getenv(jaegerURLVar), "the query API of a Jaeger, as devstack up --tracing prints it and writes it to "+jaegerURLVar+" (trace)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	// A closed stdout (devstack demo | head) must not kill us before we stop
	// the stack: writes fail instead, and the deferred stops still run.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := options{root: root, worker: *worker, events: *events, envFile: *envFile, verbose: *verbose, tracing: *tracing, weaviateDefaults: *weaviateDefaults, out: stdout, errOut: stderr}
	switch cmd {
	case "up":
		err = up(ctx, opts)
	case "demo":
		err = demo(ctx, opts)
	case "trace":
		if *jaeger == "" || fs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: devstack trace --jaeger URL TRACE_ID|TRACEPARENT|- (the URL also from "+jaegerURLVar+")")
			return 2
		}
		id := fs.Arg(0)
		if id == "-" {
			if id, err = traceFromResults(os.Stdin); err != nil {
				fmt.Fprintln(stderr, "devstack:", err)
				return 1
			}
		}
		err = drawTrace(ctx, stdout, *jaeger, id)
	default:
		fmt.Fprintf(stderr, "devstack: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "devstack:", err)
		return 1
	}
	return 0
}

type options struct {
	root, worker, events, envFile string
	verbose, tracing              bool
	weaviateDefaults              bool
	out, errOut                   io.Writer
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := devstackRepoRoot(wd)
	if err != nil {
		return "", fmt.Errorf("%w (run devstack from inside the chatprep repository)", err)
	}
	return root, nil
}
