package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/chatprep/chatprep/internal/eventfile"
	"github.com/chatprep/chatprep/internal/importer"
	"github.com/chatprep/chatprep/internal/tokens"
)

// weaviateVars are read by every command that talks to Weaviate only.
var weaviateVars = []string{"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR"}

type importFlags struct {
	skip, batchSize, concurrency int
}

func importCommand() command {
	return command{
		name: "import", args: "[FILE]", maxArgs: 1, summary: "bulk-load past chat messages (JSON lines) from FILE or stdin into Weaviate, without results",
		vars: append(slices.Clip(weaviateVars), "TOKEN_ENCODING"),
		help: `Reads chat messages as JSON lines (the chat event format, type message, user
or assistant) from FILE (or stdin when FILE is absent or -), validates each as
worker enqueue does, and writes the valid ones straight into Weaviate, in
batches of --batch-size, --concurrency at a time: no queue, no preprocessing,
no result. Each message becomes the object a worker would store for it (the
same id, the same searchable properties, its length in TOKEN_ENCODING's
tokens): history and relevance find it, and the same event received later
stays one object. Mutes and unmutes are
rejected: send them with worker enqueue.

Prints "imported N, rejected M" on stdout, then on stderr the time it took
and the rate. Each rejected line is reported on stderr with its line number
and reason, the first 100 of them, then how many more there were; a line
whose chat_id and event_id came earlier is rejected. Progress goes to stderr
once a second.

Idempotent: importing a line again writes the same object, so a whole file
can always be imported again. Resumable: the progress line, and the last
line of an import that was interrupted (Ctrl-C) or stopped (Weaviate failed
for 2 minutes), say up to which line everything is done;
--skip N passes over those lines. A write Weaviate fails for its own sake is
tried again with back-off; one it refuses is a rejected line.
Exit status 1 if any line was rejected or the import stopped; 2 if FILE is
not a file of JSON lines (a directory, a binary file), before anything is
written. Run worker setup first (it creates the collections).`,
		flags: func(fs *flag.FlagSet) any {
			f := &importFlags{}
			fs.IntVar(&f.skip, "skip", 0, "pass over the first `N` lines (resume an import)")
			fs.IntVar(&f.batchSize, "batch-size", importer.DefaultBatchSize, "write at most `N` messages per batch request")
			fs.IntVar(&f.concurrency, "concurrency", importer.DefaultConcurrency, "write at most `N` batches at once")
			return f
		},
		run: runImport,
	}
}

func runImport(ctx context.Context, env *cmdEnv) int {
	f := env.own.(*importFlags)
	switch {
	case f.skip < 0:
		fmt.Fprintf(env.stderr, "worker import: --skip %d: want 0 or more\n", f.skip)
		return exitUsage
	case f.batchSize < 1:
		fmt.Fprintf(env.stderr, "worker import: --batch-size %d: want at least 1\n", f.batchSize)
		return exitUsage
	case f.concurrency < 1:
		fmt.Fprintf(env.stderr, "worker import: --concurrency %d: want at least 1\n", f.concurrency)
		return exitUsage
	}
	in, closeIn, code := openInput(env)
	if code != exitOK {
		return code
	}
	defer closeIn()
	fromStdin := in == env.stdin
	if fromStdin {
		var stop func()
		in, stop = interruptible(ctx, in)
		defer stop()
	}
	input := eventfile.NewInput(in)
	if !fromStdin {
		if err := eventfile.Check(input); err != nil {
			fmt.Fprintf(env.stderr, "worker import: %s: %v\n", inputName(env.args), err)
			return exitUsage
		}
	}
	counter, err := tokens.New(env.cfg.TokenEncoding)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker import: TOKEN_ENCODING: %v\n", err)
		return exitUsage
	}
	sc := storeConfig(env.cfg, nopLogger())
	sc.Tokens = counter // each message's token count, as the worker stores it
	st, code := openStore(ctx, env, sc)
	if code != exitOK {
		return code
	}
	defer st.Close()
	cfg := importer.Config{BatchSize: f.batchSize, Concurrency: f.concurrency, Skip: f.skip, Output: eventfile.Output{Rejects: env.stderr, Progress: env.stderr, Terminal: isTerminal(env.stderr)}}
	rep, err := importer.Run(ctx, st, input, cfg)
	var inputErr *eventfile.InputError
	if errors.As(err, &inputErr) {
		fmt.Fprintf(env.stderr, "worker import: %s: %v\n", inputName(env.args), err)
		return exitUsage
	}
	fmt.Fprintf(env.stdout, "imported %d, rejected %d\n", rep.Imported, rep.Rejected)
	if f.skip > 0 {
		fmt.Fprintf(env.stderr, "worker import: skipped the first %d lines\n", min(f.skip, rep.Lines))
	}
	fmt.Fprintf(env.stderr, "worker import: %d messages in %s, %.0f messages/s\n",
		rep.Imported, rep.Elapsed.Round(100*time.Millisecond), rep.Rate())
	if err != nil {
		fmt.Fprintf(env.stderr, "worker import: stopped: %v\n", err)
		fmt.Fprintf(env.stderr, "worker import: lines 1-%d are done (imported or rejected); to resume: worker import --skip %d %s\n",
			rep.Done, rep.Done, resumeInput(env.args))
		return exitFailed
	}
	if rep.Rejected > 0 {
		return exitFailed
	}
	return exitOK
}

// openInput opens FILE of a command that reads JSON lines (or stdin). On
// failure it says so on stderr and returns exitUsage.
func openInput(env *cmdEnv) (io.Reader, func(), int) {
	if len(env.args) == 0 || env.args[0] == "-" {
		return env.stdin, func() {}, exitOK
	}
	name := env.args[0]
	f, err := os.Open(name)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker %s: %v\n", env.name, err)
		return nil, nil, exitUsage
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		fmt.Fprintf(env.stderr, "worker %s: %s is a directory; give a file of JSON lines (or - for stdin)\n", env.name, name)
		return nil, nil, exitUsage
	}
	return f, func() { f.Close() }, exitOK
}

// interruptible returns in as a reader whose Read returns once ctx ends,
// also while it waits for a line that may never come (stdin from a pipe or
// a terminal, which closing cannot interrupt): the command can then say
// where to resume. The copy from in may stay blocked until the process
// exits; the function returned ends it otherwise.
func interruptible(ctx context.Context, in io.Reader) (io.Reader, func()) {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, in)
		pw.CloseWithError(err) // nil: EOF
	}()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	return pr, func() {
		stop()
		pr.Close()
	}
}

// resumeInput is how the resume line names the input.
func resumeInput(args []string) string {
	if len(args) == 1 && args[0] != "-" {
		return args[0]
	}
	return "< FILE"
}
