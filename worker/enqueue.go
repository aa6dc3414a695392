package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/enqueue"
	"github.com/chatprep/chatprep/internal/queues"
)

func enqueueCommand() command {
	return command{
		name: "enqueue", args: "[FILE]", summary: "send chat events to the input queue",
		needsConfig: true,
		help: `Reads chat events as JSON lines from FILE (or stdin when FILE is absent or -),
validates each with the worker's own decoder, and sends the valid ones to
INPUT_QUEUE with SendMessageBatch, ten per call, in file order. On a FIFO queue
MessageGroupId is the chat_id and MessageDeduplicationId the event_id.
Prints "sent N, rejected M"; each rejected line is reported on stderr with its
line number and reason. Exit status 1 if any line was rejected.`,
		run: runEnqueue,
	}
}

func runEnqueue(ctx context.Context, env *cmdEnv) int {
	if len(env.args) > 1 {
		fmt.Fprintf(env.stderr, "worker enqueue: one FILE at most, got %d arguments\n", len(env.args))
		return exitUsage
	}
	var in io.Reader = env.stdin
	if len(env.args) == 1 && env.args[0] != "-" {
		f, err := os.Open(env.args[0])
		if err != nil {
			fmt.Fprintf(env.stderr, "worker enqueue: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		in = f
	}
	awsCfg, err := awsconn.Load(ctx, env.cfg)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker enqueue: %v\n", err)
		return exitFailed
	}
	api := awsconn.SQS(awsCfg, env.cfg)
	url, err := queues.URL(ctx, api, env.cfg.InputQueue)
	if err != nil {
		var nf *queues.NotFoundError
		if errors.As(err, &nf) {
			fmt.Fprintf(env.stderr, "worker enqueue: INPUT_QUEUE: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(env.stderr, "worker enqueue: %v\n", err)
		return exitFailed
	}
	rep, err := enqueue.NewSender(api, url, config.IsFIFO(env.cfg.InputQueue), enqueue.Config{Rejects: env.stderr}).Send(ctx, in)
	fmt.Fprintf(env.stdout, "sent %d, rejected %d\n", rep.Sent, rep.Rejected)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker enqueue: stopped: %v\n", err)
		return exitFailed
	}
	if rep.Rejected > 0 {
		return exitFailed
	}
	return exitOK
}
