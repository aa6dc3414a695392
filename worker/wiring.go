package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/queues"
	"github.com/chatprep/chatprep/internal/store"
)

// storeConfig is the Weaviate store's configuration for cfg.
func storeConfig(cfg config.Config, log zerolog.Logger) store.Config {
	return store.Config{
		URL:      cfg.WeaviateURL,
		APIKey:   cfg.WeaviateAPIKey,
		GRPCAddr: cfg.WeaviateGRPCAddr,
		MaxConns: cfg.PoolSize,
		Logger:   log.With().Str("component", "store").Logger(),
	}
}

func nopLogger() zerolog.Logger { return zerolog.Nop() }

// sqsClient is the SQS client for a command's configuration.
func sqsClient(ctx context.Context, env *cmdEnv) (*sqs.Client, error) {
	awsCfg, err := awsconn.Load(ctx, env.cfg)
	if err != nil {
		return nil, err
	}
	return awsconn.SQS(awsCfg, env.cfg), nil
}

// queueURL resolves the queue that variable names (value is its setting).
// On failure it says so on stderr and returns the exit code: exitUsage when
// the queue does not exist (the configuration is wrong, or setup was not
// run), exitFailed otherwise.
func queueURL(ctx context.Context, env *cmdEnv, api queues.Resolver, variable, value string) (string, int) {
	url, err := queues.URL(ctx, api, value)
	if err == nil {
		return url, exitOK
	}
	var nf *queues.NotFoundError
	if errors.As(err, &nf) {
		fmt.Fprintf(env.stderr, "worker %s: %s: %v\n", env.name, variable, err)
		return "", exitUsage
	}
	fmt.Fprintf(env.stderr, "worker %s: %v\n", env.name, err)
	return "", exitFailed
}
