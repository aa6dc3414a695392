package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/enqueue"
	"github.com/chatprep/chatprep/internal/eventfile"
)

func enqueueCommand() command {
	return command{
		name: "enqueue", args: "[FILE]", maxArgs: 1, summary: "send chat events (JSON lines) from FILE or stdin to the input queue",
		vars: vars(awsVars, []string{"INPUT_QUEUE"}),
		help: `Reads chat events as JSON lines from FILE (or stdin when FILE is absent or -),
validates each with the worker's own decoder, and sends the valid ones to
INPUT_QUEUE with SendMessageBatch, ten per call, --concurrency calls at once.
On a FIFO queue MessageGroupId is the chat_id and MessageDeduplicationId the
event_id; each chat's events are sent in file order (a chat's batches go one
at a time).

Prints "sent N, rejected M". Each rejected line is reported on stderr with
its line number and reason, the first 100 of them, then how many more there
were; an event_id already seen earlier in the input is rejected, naming the
line it was first on. Progress (sent, rejected, events/s) goes to stderr once
a second: one line a second, or one line rewritten in place on a terminal.
Exit status 1 if any line was rejected or sending stopped; 2 if FILE is not
a file of JSON lines (a directory, a binary file), before anything is sent.`,
		flags: func(fs *flag.FlagSet) any {
			return fs.Int("concurrency", enqueue.DefaultConcurrency, "send at most `N` batches at once")
		},
		run: runEnqueue,
	}
}

func runEnqueue(ctx context.Context, env *cmdEnv) int {
	concurrency := *env.own.(*int)
	if concurrency < 1 {
		fmt.Fprintf(env.stderr, "worker enqueue: --concurrency %d: want at least 1\n", concurrency)
		return exitUsage
	}
	in, closeIn, code := openInput(env)
	if code != exitOK {
		return code
	}
	defer closeIn()
	input := enqueue.NewInput(in)
	if in != env.stdin {
		// A file is checked before SQS is reached, so that a binary file is
		// named as such whatever else is wrong; stdin is not (its first line
		// may be a while coming, and a bad configuration should not wait for
		// it): Send checks it.
		if err := enqueue.Check(input); err != nil {
			fmt.Fprintf(env.stderr, "worker enqueue: %s: %v\n", inputName(env.args), err)
			return exitUsage
		}
	}
	api, url, code := openQueue(ctx, env, "INPUT_QUEUE", env.cfg.InputQueue)
	if code != exitOK {
		return code
	}
	cfg := enqueue.Config{Concurrency: concurrency, Output: eventfile.Output{Rejects: env.stderr, Progress: env.stderr, Terminal: isTerminal(env.stderr)}}
	rep, err := enqueue.NewSender(api, url, config.IsFIFO(env.cfg.InputQueue), cfg).Send(ctx, input)
	var inputErr *enqueue.InputError
	if errors.As(err, &inputErr) {
		fmt.Fprintf(env.stderr, "worker enqueue: %s: %v\n", inputName(env.args), err)
		return exitUsage
	}
	fmt.Fprintf(env.stdout, "sent %d, rejected %d\n", rep.Sent, rep.Rejected)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker enqueue: stopped: %v (%d valid lines read were not sent)\n", err, rep.Unsent)
		return exitFailed
	}
	if rep.Rejected > 0 {
		return exitFailed
	}
	return exitOK
}

func inputName(args []string) string {
	if len(args) == 1 && args[0] != "-" {
		return args[0]
	}
	return "stdin"
}

// isTerminal tells whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
