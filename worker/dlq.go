package main

import (
	"context"

	"flag"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/queues"
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
  invalid        on a message without error_code whose body is no valid
                 event (the worker's own validator): {"error_code", "error"}
  body           the message body as it is

Every message is left in the queue and receivable again at once (visibility
0) when the listing ends. On a FIFO queue SQS hands out a group's messages
only while none of that group is in flight, and one receive may return only
the first of each group, so a listing shows at most the first messages of
each chat. When the queue holds more than was shown, a last line on stderr
says how many (SQS's approximate counts).`,
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
	n, err := dlq.List(ctx, peek.New(api, url, 0), max, env.stdout)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker dlq list: %v\n", err)
		return exitFailed
	}
	if line := unreached(ctx, api, url, n, "shown"); line != "" {
		fmt.Fprintf(env.stderr, "worker dlq list: %s\n", line)
	}
	return exitOK
}

// unreached is the line that says a queue holds more than a command
// handled (seen: shown, or moved and skipped), "" when it does not. On a
// FIFO queue a chat's later messages wait behind its first, and an SQS
// receive may return one message per group: without this line they would
// go unnoticed.
func unreached(ctx context.Context, api *sqs.Client, url string, seen int, what string) string {
	c, err := queues.CountMessages(ctx, api, url)
	if err != nil {
		return fmt.Sprintf("could not count what the queue holds: %v", err)
	}
	if c.Total() <= seen {
		return ""
	}
	line := fmt.Sprintf("the queue holds about %d messages (%d receivable, %d in flight), %d %s",
		c.Total(), c.Visible, c.InFlight, seen, what)
	if config.IsFIFO(url) {
		line += "; on a FIFO queue a chat's later messages wait behind its first, and a receive may return one message per chat"
	}
	return line
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

Invalid events would come straight back: messages with an error_code, and
messages without one (the redrive policy moved them) whose body is no valid
event by the worker's own validator. They are skipped (left in the queue,
receivable again once the run ends) unless --all. So is a message that comes
back during this run. Each moved message carries first_sent_timestamp, when
SQS first received the event (what orders a mute or unmute without sent_at).
When the queue still holds more than this run moved and skipped, a last line
on stderr says how many. Safe to run while workers run, and twice in a row.
Exit status 1 if a message could not be moved (it stays in the dead-letter
queue).`,
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
		fmt.Fprintf(env.stderr, "worker dlq redrive: %d skipped are invalid events (an error_code, or a body that is no valid event; see worker dlq list); --all moves them too\n", rep.Invalid)
	}
	if rep.CameBack > 0 {
		fmt.Fprintf(env.stderr, "worker dlq redrive: %d skipped failed again during this run and were left in the dead-letter queue\n", rep.CameBack)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "worker dlq redrive: stopped: %v\n", err)
		return exitFailed
	}
	seen, what := rep.Skipped, "skipped"
	if f.dryRun {
		seen, what = rep.Redriven+rep.Skipped, "seen"
	}
	if line := unreached(ctx, api, dlqURL, seen, what); line != "" {
		fmt.Fprintf(env.stderr, "worker dlq redrive: %s\n", line)
	}
	return exitOK
}
