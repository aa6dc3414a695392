package main

import (
	"context"
	"fmt"
)

func runCommand() command {
	return command{
		name: "run", summary: "consume the input queue until SIGINT/SIGTERM",
		needsConfig: true,
		run: func(ctx context.Context, env *cmdEnv) int {
			fmt.Fprintln(env.stderr, "worker run: not wired yet")
			return exitFailed
		},
	}
}
