package main

import (
	"context"
	"errors"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/logbridge"
	"github.com/chatprep/chatprep/internal/pipeline"
)

func runCommand() command {
	return command{
		name: "run", summary: "consume the input queue until SIGINT/SIGTERM",
		vars: allVars, jsonLines: true,
		help: `Consumes INPUT_QUEUE: each chat event is preprocessed on the shared pool
(recent history, relevance search and muted state from Weaviate, route
detection, storing the message) and a user message's context is published to
RESPONSE_QUEUE. Invalid events go to DLQ_QUEUE. One JSON log line per event on
stdout; metrics to CloudWatch every METRICS_FLUSH_INTERVAL; /healthz and
/readyz (and /debug/vars, the worker's counters) on HEALTH_ADDR.

/readyz answers ready once the worker reached Weaviate and INPUT_QUEUE; until
Weaviate answers it receives nothing, and tries again in the background.

SIGTERM or SIGINT: no new long poll (the one in flight runs to its end:
SQS would deliver into a cancelled one; on an idle queue that is up to 20 s,
which the stop's log line says), finish what was received within
SHUTDOWN_TIMEOUT, release the rest to the queue, flush, exit 0. A second
signal exits at once with status 1 (what it cut short comes back after its
visibility timeout).

Everything it writes is JSON lines. A start-up failure is one JSON line on
stderr naming what to fix; exit status 2 when the configuration is the cause.`,
		run: func(ctx context.Context, env *cmdEnv) int {
			workerID := pipeline.WorkerID()
			// grpc and the standard log package (the Weaviate client's) log
			// only through process-global hooks: set once, here, before
			// anything opens a connection.
			logbridge.SetGlobal(app.Logger(env.cfg, env.stdout, workerID))
			app.TuneGC(env.getenv)
			err := app.Run(ctx, env.cfg, app.Options{Stdout: env.stdout, Version: buildVersion(), WorkerID: workerID,
				StopHint: "a second SIGINT or SIGTERM (Ctrl-C again) stops at once"})
			if err == nil {
				return exitOK
			}
			// The worker's output is JSON from its first line: so is the
			// reason it stopped.
			log := app.Logger(env.cfg, env.stderr, workerID)
			line := log.Error().Err(err)
			code := exitFailed
			var cfgErr *app.ConfigError
			if errors.As(err, &cfgErr) {
				line = line.Str("variable", cfgErr.Var)
				code = exitUsage
			}
			line.Msg(map[bool]string{true: "worker cannot start", false: "worker failed"}[code == exitUsage])
			return code
		},
	}
}
