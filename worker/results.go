package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/results"
)

type resultsFlags struct {
	max        int
	wait       waitFlag
	delete     bool
	attributes bool
}

// waitFlag is --wait: a Go duration (5s, 1m30s) or a bare number of
// seconds (5, 2.5), as an operator types either.
type waitFlag time.Duration

func (w *waitFlag) String() string { return time.Duration(*w).String() }

func (w *waitFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if secs, nerr := strconv.ParseFloat(v, 64); nerr == nil {
		d, err = time.Duration(secs*float64(time.Second)), nil
		if secs > math.MaxInt64/float64(time.Second) {
			err = errors.New("too long")
		}
	}
	switch {
	case err != nil:
		return errors.New("want seconds (5) or a duration (5s, 1m)")
	case d < 0:
		return errors.New("want 0 or more")
	}
	*w = waitFlag(d)
	return nil
}

func resultsCommand() command {
	return command{
		name: "results", summary: "print results from the response queue, leaving them there",
		vars: vars(awsVars, []string{"RESPONSE_QUEUE"}),
		help: `Prints up to --max results from RESPONSE_QUEUE, one JSON object a line (the
result exactly as the worker published it), waiting at most --wait for the
first; later results are read while they keep coming. --wait takes seconds
(5) or a duration (5s, 1m); SQS counts whole seconds, so it is rounded to
them, and anything under a second (0 too) waits one second: SQS would take 0
as the queue's own wait (20 s on the queues worker setup makes).

--attributes prints each result with its message attributes, one object a
line: {"body":{…the result…},"attributes":{"traceparent":"00-…","event_id":…,
"chat_id":…,"route":…}}. A result's traceparent names its trace, which
devstack trace (or any tracing UI) shows.

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
			f.wait = waitFlag(results.DefaultWait)
			fs.Var(&f.wait, "wait", "wait at most `D` for the first result: seconds (5) or a duration (5s, 1m); at least 1s")
			fs.BoolVar(&f.delete, "delete", false, "delete each result once printed, instead of giving it back")
			fs.BoolVar(&f.attributes, "attributes", false, "print each result as {\"body\":…,\"attributes\":…}, with its message attributes (traceparent, event_id, …)")
			return f
		},
		run: runResults,
	}
}

func runResults(ctx context.Context, env *cmdEnv) int {
	f := env.own.(*resultsFlags)
	if f.max < 1 {
		fmt.Fprintf(env.stderr, "worker results: --max %d: want at least 1\n", f.max)
		return exitUsage
	}
	api, url, code := openQueue(ctx, env, "RESPONSE_QUEUE", env.cfg.ResponseQueue)
	if code != exitOK {
		return code
	}
	opts := results.Options{Max: f.max, Wait: time.Duration(f.wait), Delete: f.delete, Attributes: f.attributes}
	if _, err := results.Print(ctx, peek.New(api, url, 0), opts, env.stdout, env.stderr); err != nil {
		fmt.Fprintf(env.stderr, "worker results: %v\n", err)
		return exitFailed
	}
	return exitOK
}
