// Command worker is chatprep's one binary: the queue-driven preprocessing
// worker of a chat assistant, and the tools that go with it.
//
//	worker [run]               consume the input queue until SIGINT/SIGTERM
//	worker setup               create the queues and Weaviate collections (idempotent)
//	worker enqueue [FILE]      send chat events (JSON lines) to the input queue
//	worker results             print results from the response queue, leaving them there
//	worker dlq list            print dead letters, leaving them there
//	worker dlq redrive         move dead letters back to the input queue
//	worker verify              check that the worker's searches find every stored message
//	worker import [FILE]       bulk-load past chat messages (JSON lines) into Weaviate
//	worker forget              erase a chat, or the messages older than an age, from Weaviate
//	worker healthcheck         exit 0 if the worker's health endpoint answers ready
//	worker version             print the version (also worker --version)
//
// Configuration comes from the environment (CONTRACT.md); each variable a
// command reads has a flag that overrides it (INPUT_QUEUE → --input-queue).
// `worker COMMAND --help` lists a command's own flags and the variables it
// reads, with their defaults.
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

	"github.com/rs/zerolog"

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
	// name is how it is called: "setup", or "dlq list" for a command of a group.
	name string
	// args shows its positional arguments in the usage line, e.g. "[FILE]";
	// maxArgs is how many it takes (more is a usage error).
	args    string
	maxArgs int
	summary string
	help    string
	// vars are the configuration variables it reads, in CONTRACT.md's
	// order; nil for a command that reads none.
	vars []string
	// flags registers the command's own flags; may be nil.
	flags func(fs *flag.FlagSet) any
	// run runs the command with its validated configuration.
	run func(ctx context.Context, env *cmdEnv) int
	// jsonLines: everything the command writes is JSON lines (worker run,
	// whose output goes to a log service), also a configuration that does
	// not load and the second signal.
	jsonLines bool
}

// cmdEnv is what a command gets to work with.
type cmdEnv struct {
	name   string // the command's name, for messages
	cfg    config.Config
	args   []string // positional arguments
	own    any      // the command's own flag values
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// Variables the commands read, by what they talk to.
var (
	// awsVars are read by every command that calls SQS.
	awsVars = []string{"AWS_REGION", "AWS_ENDPOINT_URL", "SQS_VERIFY_CHECKSUMS"}
	// allVars are every variable: `worker run` reads them all.
	allVars = func() []string {
		var out []string
		for _, v := range config.Env() {
			out = append(out, v[0])
		}
		return out
	}()
)

// vars joins variable lists.
func vars(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func commands() []command {
	return []command{
		runCommand(),
		setupCommand(),
		enqueueCommand(),
		resultsCommand(),
		dlqListCommand(),
		dlqRedriveCommand(),
		verifyCommand(),
		importCommand(),
		forgetCommand(),
		healthcheckCommand(),
		{
			name: "version", summary: "print the version (also: worker --version)",
			help: "Prints the version of this binary: the git revision it was built from.",
			run: func(_ context.Context, env *cmdEnv) int {
				fmt.Fprintln(env.stdout, "chatprep worker", buildVersion())
				return exitOK
			},
		},
	}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// Main runs the command line args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 {
		switch {
		case args[0] == "--version" || args[0] == "-version":
			args = append([]string{"version"}, args[1:]...)
		case isHelp(args[0]) && len(args) == 1:
			usage(stdout)
			return exitOK
		case args[0] == "help": // worker help COMMAND
			args = append(args[1:], "--help")
		}
	}
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "dlq" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			if len(args) > 0 && isHelp(args[0]) {
				groupUsage(stdout, "dlq")
				return exitOK
			}
			fmt.Fprintln(stderr, "worker dlq: want a subcommand, list or redrive (see worker dlq --help)")
			return exitUsage
		}
		name, args = "dlq "+args[0], args[1:]
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "worker: unknown command %q (commands: %s; see worker --help)\n", name, strings.Join(commandNames(), ", "))
		return exitUsage
	}

	fs := flag.NewFlagSet("worker "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := &cmdEnv{name: cmd.name, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if cmd.flags != nil {
		env.own = cmd.flags(fs)
	}
	var load func() (config.Config, error)
	if cmd.vars != nil {
		load = config.Flags(fs, getenv, cmd.vars...)
	}
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, cmd, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "worker %s: %v (see worker %s --help)\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	if len(pos) > cmd.maxArgs {
		extra := pos[cmd.maxArgs:]
		fmt.Fprintf(stderr, "worker %s: unexpected argument %q (see worker %s --help)\n", cmd.name, strings.Join(extra, " "), cmd.name)
		return exitUsage
	}
	env.args = pos
	if load != nil {
		cfg, err := load()
		if err != nil {
			if cmd.jsonLines {
				l := zerolog.New(stderr).With().Timestamp().Logger()
				line := l.Error().Err(err)
				var ce *config.Error
				if errors.As(err, &ce) {
					line = line.Strs("problems", ce.Problems)
				}
				line.Msg("worker cannot start: fix the configuration")
				return exitUsage
			}
			fmt.Fprintf(stderr, "worker %s: %v\n", cmd.name, err)
			return exitUsage
		}
		env.cfg = cfg
	}

	second := func(s os.Signal) { fmt.Fprintf(stderr, "worker: second %v, exiting at once\n", s) }
	if cmd.jsonLines {
		second = func(s os.Signal) {
			l := zerolog.New(stderr).With().Timestamp().Logger()
			l.Warn().Str("signal", s.String()).Msg("second signal: exiting at once, without draining")
		}
	}
	ctx, stop := signalContext(second)
	defer stop()
	return cmd.run(ctx, env)
}

// parse parses flags wherever they are among the arguments (`enqueue FILE
// --concurrency 4` as well as `enqueue --concurrency 4 FILE`) and returns
// the positional arguments. After "--" every argument is positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		rest := args
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if consumed := rest[:len(rest)-len(args)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, args...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func commandNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range commands() {
		n, _, _ := strings.Cut(c.name, " ")
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// is reported to second and ends the process at once with status 1.
func signalContext(second func(os.Signal)) (context.Context, func()) {
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
			second(s)
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
`)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, c := range commands() {
		call := "worker " + c.name
		if c.name == "run" {
			call = "worker [run]"
		}
		if c.args != "" {
			call += " " + c.args
		}
		fmt.Fprintf(tw, "  %s\t%s\n", call, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Configuration comes from the environment; each variable a command reads has
a flag that overrides it (INPUT_QUEUE → --input-queue), but for OTEL_*:
OpenTelemetry's SDK reads those (and its other OTEL_* variables) from the
environment itself. A bad value stops the command at start with exit status
2 and one line naming the variable.
'worker COMMAND --help' lists a command's flags and the variables it reads.

All variables (worker run reads every one):
`)
	envTable(w, allVars, false)
}

func groupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: worker %s COMMAND [flags]\n\nCommands:\n", group)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(tw, "  worker %s\t%s\n", c.name, c.summary)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'worker %s COMMAND --help' for a command's flags and variables.\n", group)
}

// envTable lists variables with their defaults (and flags, withFlags).
func envTable(w io.Writer, names []string, withFlags bool) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if withFlags {
		fmt.Fprintln(tw, "  FLAG\tVARIABLE\tDEFAULT\tMEANING")
	} else {
		fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	}
	for _, v := range config.Env(names...) {
		def := v[1]
		if def == "" {
			def = "(unset)"
		}
		if withFlags {
			flagName := "(no flag)"
			if config.HasFlag(v[0]) {
				flagName = "--" + config.FlagName(v[0])
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", flagName, v[0], def, v[2])
		} else {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v[0], def, v[2])
		}
	}
	tw.Flush()
}

func commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	call := "worker " + cmd.name + " [flags]"
	if cmd.args != "" {
		call += " " + cmd.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", call, strings.TrimSpace(cmd.help))
	isVar := map[string]bool{}
	for _, v := range cmd.vars {
		isVar[config.FlagName(v)] = true
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		if isVar[f.Name] {
			return
		}
		arg, use := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			use += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, use)
	})
	fmt.Fprintf(tw, "  --help\t%s\n", "show this help")
	tw.Flush()
	if len(cmd.vars) > 0 {
		fmt.Fprintln(w, "\nVariables it reads (each from the environment; its flag overrides it):")
		envTable(w, cmd.vars, true)
	} else {
		fmt.Fprintln(w, "\nIt reads no configuration variables.")
	}
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
