package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatprep/chatprep/internal/app"
)

func runCommand() command {
	return command{
		name: "run", summary: "consume the input queue until SIGINT/SIGTERM",
		needsConfig: true,
		help: `Consumes INPUT_QUEUE: each chat event is preprocessed on the shared pool
(recent history, relevance search and muted state from Weaviate, route
detection, storing the message) and a user message's context is published to
RESPONSE_QUEUE. Invalid events go to DLQ_QUEUE. One JSON log line per event on
stdout; metrics to CloudWatch every METRICS_FLUSH_INTERVAL; /healthz and
/readyz (and /debug/vars, the worker's counters) on HEALTH_ADDR.

SIGTERM or SIGINT: stop receiving, finish in-flight messages within
SHUTDOWN_TIMEOUT, release the rest to the queue, flush, exit 0. A second
signal exits at once with status 1.`,
		run: func(ctx context.Context, env *cmdEnv) int {
			err := app.Run(ctx, env.cfg, app.Options{Stdout: env.stdout, Version: buildVersion()})
			var cfgErr *app.ConfigError
			switch {
			case errors.As(err, &cfgErr):
				fmt.Fprintf(env.stderr, "worker run: %v\n", err)
				return exitUsage
			case err != nil:
				fmt.Fprintf(env.stderr, "worker run: %v\n", err)
				return exitFailed
			}
			return exitOK
		},
	}
}
