package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func dlqListCommand() command {
	return command{
		name: "dlq list", summary: "print dead letters, leaving them in the dead-letter queue",
		vars: vars(awsVars, []string{"DLQ_QUEUE"}),
		help: `Prints up to --max messages of DLQ_QUEUE, one JSON object a line:
  message_id     SQS's message id
  error_code     why the worker moved it (e.g. invalid_json), and
  error          what is wrong; both absent when the queue's redrive policy
                 moved it (MAX_RECEIVE_COUNT receives that did not finish)
  receive_count  SQS's ApproximateReceiveCount, this listing's receive included
  sent_at        when it was sent to the dead-letter queue (or, moved by the
                 redrive policy, to the input queue), RFC 3339, UTC
  body           the message body as it is

Every message is left in the queue and receivable again at once (visibility
0) when the listing ends. On a FIFO queue SQS hands out a group's messages
only while none of that group is in flight, so a listing shows at most the
first messages of each chat (up to ten).`,
		flags: func(fs *flag.FlagSet) any {
			return fs.Int("max", dlq.DefaultListMax, "print at most `N` dead letters")
		},
		run: runDLQList,
	}
}

func runDLQList(ctx context.Context, env *cmdEnv) int {
	max := *env.own.(*int)
	if max < 1 {
		fmt.Fprintf(env.stderr, "worker dlq list: --max %d: want at least 1\n", max)
		return exitUsage
	}
	api, url, code := openQueue(ctx, env, "DLQ_QUEUE", env.cfg.DLQQueue)
	if code != exitOK {
		return code
	}
	if _, err := dlq.List(ctx, peek.New(api, url, 0), max, env.stdout); err != nil {
		fmt.Fprintf(env.stderr, "worker dlq list: %v\n", err)
		return exitFailed
	}
	return exitOK
}

type redriveFlags struct {
	max         int
	dryRun, all bool
}

func dlqRedriveCommand() command {
	return command{
		name: "dlq redrive", summary: "move dead letters back to the input queue",
		vars: vars(awsVars, []string{"INPUT_QUEUE", "DLQ_QUEUE"}),
		help: `Moves the messages of DLQ_QUEUE back to INPUT_QUEUE, oldest first, and prints
"redriven N, skipped M".

Each message keeps its body, its MessageGroupId (the chat) and its message
attributes but error_code and error, which a message that fails again gets
anew; it gets a new deduplication id, "redrive-<its dead-letter message id>",
and a redrive_run attribute naming this run. Each message is sent to the
input queue before it is deleted from the dead-letter queue, so none is lost;
should the command die between the two, the message is in both queues and a
worker handles the second delivery idempotently (a repeated redrive within 5
minutes is even deduplicated by SQS on a FIFO queue). A chat's messages are
moved in their order, one receive of up to ten at a time.

Messages with an error_code are invalid events that would come straight
back: they are skipped (left in the queue, receivable again once the run
ends) unless --all. So is a message that comes back during this run. Safe to
run while workers run, and twice in a row. Exit status 1 if a message could
not be moved (it stays in the dead-letter queue).`,
		flags: func(fs *flag.FlagSet) any {
			f := &redriveFlags{}
			fs.IntVar(&f.max, "max", 0, "move at most `N` messages (default: every one)")
			fs.BoolVar(&f.dryRun, "dry-run", false, "move nothing; count what would be redriven and skipped")
			fs.BoolVar(&f.all, "all", false, "also move invalid events (messages with an error_code)")
			return f
		},
		run: runDLQRedrive,
	}
}

func runDLQRedrive(ctx context.Context, env *cmdEnv) int {
	f := env.own.(*redriveFlags)
	if f.max < 0 {
		fmt.Fprintf(env.stderr, "worker dlq redrive: --max %d: want 0 (every message) or more\n", f.max)
		return exitUsage
	}
	api, dlqURL, code := openQueue(ctx, env, "DLQ_QUEUE", env.cfg.DLQQueue)
	if code != exitOK {
		return code
	}
	inURL, code := queueURL(ctx, env, api, "INPUT_QUEUE", env.cfg.InputQueue)
	if code != exitOK {
		return code
	}
	input := sqsbatch.NewSender(api, inURL, sqsbatch.Config{})
	rd := dlq.NewRedriver(peek.New(api, dlqURL, dlq.RedriveHold), input, config.IsFIFO(inURL),
		dlq.RedriveOptions{Max: f.max, All: f.all, DryRun: f.dryRun})
	rep, err := rd.Run(ctx)
	fmt.Fprintf(env.stdout, "redriven %d, skipped %d\n", rep.Redriven, rep.Skipped)
	if f.dryRun {
		fmt.Fprintln(env.stderr, "worker dlq redrive: dry run: nothing was moved; the counts are what a redrive would do")
	}
	if rep.Invalid > 0 {
		fmt.Fprintf(env.stderr, "worker dlq redrive: %d skipped have an error_code (invalid events; see worker dlq list); --all moves them too\n", rep.Invalid)
	}
	if rep.CameBack > 0 {
		fmt.Fprintf(env.stderr, "worker dlq redrive: %d skipped failed again during this run and were left in the dead-letter queue\n", rep.CameBack)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "worker dlq redrive: stopped: %v\n", err)
		return exitFailed
	}
	return exitOK
}
