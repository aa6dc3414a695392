// Command worker is chatprep's one binary: the queue-driven preprocessing
// worker of a chat assistant, and the tools that go with it.
//
//	worker [run]            consume the input queue until SIGINT/SIGTERM
//	worker setup            create the queues and Weaviate collections (idempotent)
//	worker enqueue [FILE]   send chat events (JSON lines) to the input queue
//	worker healthcheck      exit 0 if the worker's health endpoint answers ready
//	worker version          print the version
//
// Configuration comes from the environment (CONTRACT.md); every variable has
// a flag that overrides it (INPUT_QUEUE → --input-queue). Run `worker --help`
// or `worker COMMAND --help` for the details.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/chatprep/chatprep/internal/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the command ran and failed (or rejected input)
	exitUsage  = 2 // bad command line or configuration: nothing was started
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it comes from the module's VCS stamp.
var version = ""

func main() {
	os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// command is one subcommand.
type command struct {
	name, args, summary, help string
	// flags registers the command's own flags; may be nil.
	flags func(fs *flag.FlagSet) any
	// run runs the command with its validated configuration.
	run func(ctx context.Context, env *cmdEnv) int
	// needsConfig is false for commands that run without configuration.
	needsConfig bool
}

// cmdEnv is what a command gets to work with.
type cmdEnv struct {
	cfg    config.Config
	args   []string // positional arguments after the flags
	own    any      // the command's own flag values
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func commands() []command {
	return []command{
		runCommand(),
		setupCommand(),
		enqueueCommand(),
		healthcheckCommand(),
		{
			name: "version", summary: "print the version",
			run: func(_ context.Context, env *cmdEnv) int {
				fmt.Fprintln(env.stdout, "chatprep worker", buildVersion())
				return exitOK
			},
		},
	}
}

// Main runs the command line args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		usage(stdout)
		return exitOK
	}
	if name == "help" {
		usage(stdout)
		return exitOK
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "worker: unknown command %q (commands: run, setup, enqueue, healthcheck, version; see worker --help)\n", name)
		return exitUsage
	}

	fs := flag.NewFlagSet("worker "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := &cmdEnv{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if cmd.flags != nil {
		env.own = cmd.flags(fs)
	}
	var load func() (config.Config, error)
	if cmd.needsConfig {
		load = config.Flags(fs, getenv)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, cmd, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "worker %s: %v (see worker %s --help)\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	env.args = fs.Args()
	if load != nil {
		cfg, err := load()
		if err != nil {
			fmt.Fprintf(stderr, "worker %s: %v\n", cmd.name, err)
			return exitUsage
		}
		env.cfg = cfg
	}

	ctx, stop := signalContext()
	defer stop()
	return cmd.run(ctx, env)
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// ends the process at once with status 1.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "worker: second %v, exiting at once\n", s)
			os.Exit(exitFailed)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `worker — chatprep's queue-driven preprocessing worker for a chat assistant.

It consumes chat events from an SQS queue, runs each message's preprocessing
(recent history, relevance search and muted state from Weaviate, route
detection) in parallel on one shared pool, and publishes the assembled context
to a response queue. Its timings go to CloudWatch in batched PutMetricData calls.

Usage:
  worker [run] [flags]          consume the input queue until SIGINT/SIGTERM, then drain and exit 0
  worker setup [flags]          create the queues and Weaviate collections (idempotent, safe while workers run)
  worker enqueue [flags] [FILE] send chat events (JSON lines) from FILE or stdin to the input queue
  worker healthcheck [flags]    exit 0 if the worker's health endpoint answers ready (for ECS)
  worker version                print the version

Configuration comes from the environment; each variable has a flag that
overrides it (INPUT_QUEUE → --input-queue). A bad value stops the command at
start with exit status 2 and one line naming the variable.

`)
	envTable(w)
	fmt.Fprint(w, `
Run 'worker COMMAND --help' for a command's details.
`)
}

func envTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range config.Env() {
		def := v[1]
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v[0], def, v[2])
	}
	tw.Flush()
}

func commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: worker %s [flags] %s\n\n%s\n", cmd.name, cmd.args, strings.TrimSpace(cmd.help))
	if cmd.help == "" {
		fmt.Fprintln(w, cmd.summary)
	}
	own := []*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) {
		if !isConfigFlag(f.Name) {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		for _, f := range own {
			fmt.Fprintf(w, "  --%s\t%s\n", f.Name, f.Usage)
		}
	}
	if cmd.needsConfig {
		fmt.Fprintln(w, "\nConfiguration (environment variable, or --flag-name to override, e.g. --input-queue):")
		envTable(w)
	}
}

func isConfigFlag(name string) bool {
	for _, v := range config.Env() {
		if config.FlagName(v[0]) == name {
			return true
		}
	}
	return false
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return info.Main.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
