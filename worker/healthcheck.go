package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

func healthcheckCommand() command {
	return command{
		name: "healthcheck", summary: "exit 0 if the worker's health endpoint answers ready",
		vars: []string{"HEALTH_ADDR"},
		help: `Asks the worker's health endpoint (HEALTH_ADDR) for /readyz and exits 0 if it
answers 200, else 1 with the reason on stderr (the /readyz body: what the
worker has not reached yet, or that it is stopping). Meant for ECS container health
checks: ["CMD", "/worker", "healthcheck"].`,
		run: func(ctx context.Context, env *cmdEnv) int {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			url := "http://" + env.cfg.HealthAddr + "/readyz"
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				fmt.Fprintf(env.stderr, "worker healthcheck: %v\n", err)
				return exitFailed
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				fmt.Fprintf(env.stderr, "worker healthcheck: %s: %v\n", url, err)
				return exitFailed
			}
			// The body says what is not reached yet; Docker keeps it with the
			// health check's result.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fmt.Fprintf(env.stderr, "worker healthcheck: %s answered %s: %s\n", url, resp.Status, bytes.TrimSpace(body))
				return exitFailed
			}
			fmt.Fprintln(env.stdout, "ready")
			return exitOK
		},
	}
}
