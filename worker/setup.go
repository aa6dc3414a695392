package main

import (
	"context"
	"fmt"

	"github.com/chatprep/chatprep/internal/setup"
	"github.com/chatprep/chatprep/internal/store"
)

func setupCommand() command {
	return command{
		name: "setup", summary: "create the queues and Weaviate collections",
		vars: vars(awsVars, []string{"INPUT_QUEUE", "DLQ_QUEUE", "RESPONSE_QUEUE", "MAX_RECEIVE_COUNT",
			"VISIBILITY_TIMEOUT", "WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR"}),
		help: `Creates, or brings up to date, everything the worker uses:
  - DLQ_QUEUE, the dead-letter queue (FIFO when its name ends in .fifo);
  - INPUT_QUEUE, with a redrive policy to DLQ_QUEUE after MAX_RECEIVE_COUNT receives,
    VISIBILITY_TIMEOUT and 20 s long polling;
  - RESPONSE_QUEUE (FIFO when its name ends in .fifo);
  - the Weaviate collections, with an explicit schema.
Idempotent: running it again, from two processes at once, or while workers run
changes nothing that is already right. One line per resource says what it did.`,
		run: runSetup,
	}
}

func runSetup(ctx context.Context, env *cmdEnv) int {
	api, code := openSQS(ctx, env)
	if code != exitOK {
		return code
	}
	st, err := store.New(storeConfig(env.cfg, nopLogger()))
	if err != nil {
		fmt.Fprintf(env.stderr, "worker setup: %v\n", err)
		return exitFailed
	}
	defer st.Close()
	if err := setup.Run(ctx, api, st, env.cfg, env.stdout); err != nil {
		fmt.Fprintf(env.stderr, "worker setup: %v\n", err)
		return exitFailed
	}
	return exitOK
}
