package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/results"
)

type resultsFlags struct {
	max    int
	wait   time.Duration
	delete bool
}

func resultsCommand() command {
	return command{
		name: "results", summary: "print results from the response queue, leaving them there",
		vars: vars(awsVars, []string{"RESPONSE_QUEUE"}),
		help: `Prints up to --max results from RESPONSE_QUEUE, one JSON object a line (the
result exactly as the worker published it), waiting at most --wait for the
first (at least a second: SQS counts whole seconds, and takes 0 as the queue's
own 20 s); later results are read while they keep coming.

Without --delete every result is given back at once (visibility 0), so the
real consumer still gets it; each read counts towards the message's
ApproximateReceiveCount. With --delete each result is deleted once it is
printed: use that only where nobody else consumes the queue. On a FIFO
queue SQS hands out a chat's results only while none of that chat's is in
flight, so without --delete one run shows at most the first results of each
chat (up to ten).`,
		flags: func(fs *flag.FlagSet) any {
			f := &resultsFlags{}
			fs.IntVar(&f.max, "max", results.DefaultMax, "print at most `N` results")
			fs.DurationVar(&f.wait, "wait", results.DefaultWait, "wait at most `D` for the first result (e.g. 0, 5s, 1m)")
			fs.BoolVar(&f.delete, "delete", false, "delete each result once printed, instead of giving it back")
			return f
		},
		run: runResults,
	}
}

func runResults(ctx context.Context, env *cmdEnv) int {
	f := env.own.(*resultsFlags)
	if f.max < 1 || f.wait < 0 {
		fmt.Fprintf(env.stderr, "worker results: --max %d --wait %v: want --max at least 1 and --wait not negative\n", f.max, f.wait)
		return exitUsage
	}
	api, url, code := openQueue(ctx, env, "RESPONSE_QUEUE", env.cfg.ResponseQueue)
	if code != exitOK {
		return code
	}
	opts := results.Options{Max: f.max, Wait: f.wait, Delete: f.delete}
	if _, err := results.Print(ctx, peek.New(api, url, 0), opts, env.stdout, env.stderr); err != nil {
		fmt.Fprintf(env.stderr, "worker results: %v\n", err)
		return exitFailed
	}
	return exitOK
}
