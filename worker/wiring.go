package main

import (
	"context"
	"errors"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/logbridge"
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

// openStore opens the Weaviate store of an operator's command (sc, from
// storeConfig) once Weaviate answers and has the collections (Ready). On
// failure it says so on stderr and returns exitFailed; the caller closes
// the store.
func openStore(ctx context.Context, env *cmdEnv, sc store.Config) (*store.Store, int) {
	st, err := store.New(sc)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker %s: %v\n", env.name, err)
		return nil, exitFailed
	}
	if err := st.Ready(ctx); err != nil {
		st.Close()
		fmt.Fprintf(env.stderr, "worker %s: %v\n", env.name, err)
		return nil, exitFailed
	}
	return st, exitOK
}

// openQueue returns the SQS client of a command's configuration and the
// URL of the queue that variable names (value is its setting). On failure
// it says so on stderr and returns the exit code (see queueURL); missing
// credentials are the configuration's fault (exitUsage).
func openQueue(ctx context.Context, env *cmdEnv, variable, value string) (*sqs.Client, string, int) {
	api, code := openSQS(ctx, env)
	if code != exitOK {
		return nil, "", code
	}
	url, code := queueURL(ctx, env, api, variable, value)
	return api, url, code
}

// openSQS returns the SQS client of a command's configuration once its
// credentials were found. On failure it says so on stderr and returns the
// exit code (see startFailure).
func openSQS(ctx context.Context, env *cmdEnv) (*sqs.Client, int) {
	awsCfg, err := awsconn.Load(ctx, env.cfg, awsconfig.WithLogger(sdkLogger(env)))
	if err == nil {
		err = awsconn.CheckCredentials(ctx, awsCfg)
	}
	if err != nil {
		return nil, startFailure(env, err)
	}
	return awsconn.SQS(awsCfg, env.cfg), exitOK
}

// sdkLogger puts the AWS SDK's warnings (its IMDS fallback when it looks
// for credentials, for one) on a command's stderr in the command's own
// form, "worker NAME: aws sdk: …", instead of the SDK's default log lines;
// its debug lines are dropped. `worker run` logs them as JSON instead.
func sdkLogger(env *cmdEnv) logging.Logger {
	w := zerolog.ConsoleWriter{Out: env.stderr, NoColor: true, PartsOrder: []string{zerolog.MessageFieldName},
		FormatMessage: func(m any) string { return fmt.Sprintf("worker %s: aws sdk: %s", env.name, m) }}
	return logbridge.AWS(zerolog.New(w).Level(zerolog.WarnLevel))
}

// queueURL resolves the queue that variable names (value is its setting).
// On failure it says so on stderr and returns the exit code: exitUsage when
// the configuration is the cause (the queue does not exist, or setup was
// not run; the endpoint, region or credentials are wrong: awsconn.Explain),
// exitFailed otherwise.
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
	return "", startFailure(env, awsconn.Explain(err, env.cfg))
}

// startFailure says why a command could not start and returns its exit
// code: exitUsage, naming the variable, when a setting is the cause.
func startFailure(env *cmdEnv, err error) int {
	var se *awsconn.SetupError
	if errors.As(err, &se) {
		fmt.Fprintf(env.stderr, "worker %s: %s: %v\n", env.name, se.Var, err)
		return exitUsage
	}
	fmt.Fprintf(env.stderr, "worker %s: %v\n", env.name, err)
	return exitFailed
}
