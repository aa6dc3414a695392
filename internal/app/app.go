// Package app is `worker run`: it wires the consumer, the handler chain
// (the middlewares around the pipeline, composed here and only here), the
// pipeline on the shared pool, the Weaviate store behind its circuit
// breaker, the publisher, the metrics aggregator and the health endpoint,
// runs them until the context ends, and shuts them down in order within one
// deadline (see Shutdown):
//
//  1. the consumer stops receiving, drains in-flight messages within
//     SHUTDOWN_TIMEOUT and flushes its acknowledgements;
//  2. the publisher flushes what is pending, the pool and the store close;
//  3. the metrics aggregator sends what it holds, and the tracer provider
//     the spans it still queues, on a context that outlived receiving.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/breaker"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/health"
	"github.com/chatprep/chatprep/internal/logbridge"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/middleware"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/queues"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/sqsbatch"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/tracing"
)

// Options are what differs between the worker and its benchmarks.
type Options struct {
	// Stdout receives the JSON log lines. Required.
	Stdout io.Writer
	// Store, when set, replaces the Weaviate store. Only the benchmark (its
	// in-memory stand-in) and the whole-worker tests (Weaviate with injected
	// faults) set it; the worker always uses Weaviate. Readiness waits for
	// its Ready(ctx) error to be nil once, if it has that method.
	Store pipeline.Store
	// Version is logged at start.
	Version string
	// WorkerID names this worker in logs and results. Default: a new
	// pipeline.WorkerID().
	WorkerID string
	// Started, when set, is called once the health endpoint listens, with
	// its address: before the worker is ready.
	Started func(healthAddr string)
	// Ready, when set, is called once the worker is ready (it reached
	// Weaviate and its input queue, and consumes), with the health
	// endpoint's address.
	Ready func(healthAddr string)
	// StopHint, when set, ends the log line that says the stop began: how
	// to stop at once (worker run: a second signal).
	StopHint string
}

// ConfigError says the configuration cannot work (a queue that does not
// exist, a routes file that does not parse, an AWS endpoint, region or
// credentials the worker cannot reach AWS with): the worker did not start.
type ConfigError struct {
	Var string // the variable at fault
	Err error
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// startError is err, an AWS call's at start, as a *ConfigError when a
// setting is the cause (awsconn.SetupError), else as it is.
func startError(err error) error {
	var se *awsconn.SetupError
	if errors.As(err, &se) {
		return &ConfigError{Var: se.Var, Err: err}
	}
	return err
}

// Logger is the worker's JSON logger at cfg's level.
func Logger(cfg config.Config, w io.Writer, workerID string) zerolog.Logger {
	return zerolog.New(w).Level(cfg.LogLevel).With().Timestamp().Str("worker", workerID).Logger()
}

// Run runs the worker until ctx ends (SIGTERM), then drains and returns nil,
// or the error that stopped it.
func Run(ctx context.Context, cfg config.Config, o Options) error {
	workerID := cmp.Or(o.WorkerID, pipeline.WorkerID())
	log := Logger(cfg, o.Stdout, workerID)
	component := func(name string) zerolog.Logger { return log.With().Str("component", name).Logger() }

	router := route.Builtin()
	if cfg.RoutesFile != "" {
		r, err := route.Load(cfg.RoutesFile)
		if err != nil {
			return &ConfigError{Var: "ROUTES_FILE", Err: err}
		}
		router = r
	}

	budget := ShutdownBudget(cfg.ShutdownTimeout)
	var stopAt atomic.Int64 // UnixNano of SIGTERM
	defer context.AfterFunc(ctx, func() { stopAt.Store(time.Now().UnixNano()) })()

	// The SDK's own warnings (instance metadata, response bodies) go
	// through the worker's logger; with LOG_LEVEL=debug also its retries.
	awsCfg, err := awsconn.Load(ctx, cfg, awsconfig.WithLogger(logbridge.AWS(component("aws-sdk"))),
		awsconfig.WithClientLogMode(clientLogMode(cfg.LogLevel)))
	if err != nil {
		return startError(err)
	}
	if err := awsconn.CheckCredentials(ctx, awsCfg); err != nil {
		return startError(err)
	}
	sqsClient := awsconn.SQS(awsCfg, cfg)
	urls := map[string]string{}
	for _, q := range []struct{ env, v string }{{"INPUT_QUEUE", cfg.InputQueue}, {"DLQ_QUEUE", cfg.DLQQueue}, {"RESPONSE_QUEUE", cfg.ResponseQueue}} {
		u, err := queues.URL(ctx, sqsClient, q.v)
		var nf *queues.NotFoundError
		if errors.As(err, &nf) {
			return &ConfigError{Var: q.env, Err: err}
		}
		if err != nil {
			return startError(awsconn.Explain(err, cfg))
		}
		urls[q.env] = u
	}

	hs, err := health.Listen(cfg.HealthAddr, component("health"))
	if err != nil {
		return &ConfigError{Var: "HEALTH_ADDR", Err: err}
	}
	// Ready once Weaviate and the input queue were reached (in this
	// order: nothing is received before Weaviate answered once).
	weaviateUp, queueUp := hs.Require("weaviate"), hs.Require("input_queue")
	queueUp.Waiting("receiving starts once weaviate is reached")

	var (
		st       pipeline.Store = o.Store
		weaviate *store.Store
	)
	if st == nil {
		weaviate, err = store.New(store.Config{
			URL: cfg.WeaviateURL, APIKey: cfg.WeaviateAPIKey, GRPCAddr: cfg.WeaviateGRPCAddr,
			MaxConns: cfg.PoolSize, Logger: component("store"),
		})
		if err != nil {
			return fmt.Errorf("weaviate store: %w", err)
		}
		defer weaviate.Close()
		st = weaviate
	}

	var agg *metrics.Aggregator // nil: metrics off (its methods do nothing)
	if cfg.MetricsEnabled {
		agg, err = metrics.New(awsconn.CloudWatch(awsCfg), metrics.Config{
			Namespace: cfg.MetricsNamespace, FlushInterval: cfg.MetricsFlushInterval,
			OmitTimestamps: !cfg.MetricsTimestamps, Routes: router.Names(),
			FinalFlushTimeout: budget.Flush, Logger: component("metrics"),
		})
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}

	traces, err := tracing.New(ctx, tracing.Config{Export: cfg.TracesEndpoint != "", ServiceVersion: o.Version,
		InstanceID: workerID, Logger: component("tracing")})
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() { // a no-op after the stop's own, for the error returns on the way there
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FlushTimeout)
		defer cancel()
		_ = traces.Shutdown(ctx)
	}()
	tracer := traces.Tracer()

	tasks, err := pool.New(pool.Config{Size: cfg.PoolSize, TaskTimeout: cfg.TaskTimeout})
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	pub, err := publish.New(sqsClient, publish.Config{QueueURL: urls["RESPONSE_QUEUE"], Tracer: tracer})
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	brk, err := breaker.New(breaker.Config{Name: "weaviate", IsFailure: store.IsOutage, Logger: component("breaker")})
	if err != nil {
		return fmt.Errorf("breaker: %w", err)
	}
	pl, err := pipeline.New(pipeline.Config{
		HistoryLimit: cfg.HistoryLimit, RelevanceLimit: max(cfg.RelevanceLimit, 1), NoRelevance: cfg.RelevanceLimit == 0,
		Worker: workerID, Logger: component("pipeline"),
	}, pipeline.Deps{Store: GuardStore(st, brk), Publisher: pub, Pool: tasks, Router: router, Metrics: agg, Tracer: tracer})
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	drain := budget.Drain
	if drain == 0 {
		drain = -1 // the consumer reads 0 as "default"; SHUTDOWN_TIMEOUT=0 means do not wait
	}
	cons, err := consumer.New(sqsClient, consumer.Config{
		QueueURL: urls["INPUT_QUEUE"], Receivers: cfg.Receivers, MaxInFlight: cfg.MaxInFlight,
		VisibilityTimeout: cfg.VisibilityTimeout, ShutdownTimeout: drain, FinalFlushTimeout: budget.Acks,
		Gate: afterGate{first: weaviateUp.Reached(), then: brk}, Reached: queueUp.Reach, Logger: component("consumer"),
		StopHint: o.StopHint,
	})
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	deadLetters := dlq.New(sqsbatch.NewSender(dlq.SQSAPI(sqsClient), urls["DLQ_QUEUE"], sqsbatch.Config{}), config.IsFIFO(cfg.DLQQueue))
	out := &outcomes{metrics: agg}
	h := chain(pl, ctx, deadLetters, brk, out, component, tracing.Middleware(tracer, config.QueueName(cfg.InputQueue)))

	started := time.Now()
	hs.HandleVars(func() map[string]any {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		live := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
		rtmetrics.Read(live)
		v := map[string]any{
			"worker": workerID, "uptime_s": time.Since(started).Seconds(),
			"goroutines": runtime.NumGoroutine(), "heap_alloc": ms.HeapAlloc, "sys": ms.Sys,
			// What the last collection found reachable: the heap a leak
			// grows, whatever GOGC lets heap_alloc and sys grow to.
			"heap_live": live[0].Value.Uint64(),
			"consumer":  cons.Stats(), "handling": out.stats(),
			"publisher": pub.Stats(), "pool": tasks.Stats(),
			"metrics": agg.Stats(), "breaker": brk.State().String(),
			"traces": traces.Stats(),
		}
		if weaviate != nil {
			v["store"] = weaviate.Stats()
		}
		return v
	})
	hs.SetDetail(func() map[string]any { return map[string]any{"breaker": brk.State().String()} })

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hs.Serve(); err != nil {
			log.Error().Err(err).Msg("health endpoint stopped")
		}
	})
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { _ = agg.Run(metricsCtx) })
	wg.Go(func() { awaitWeaviate(ctx, st, weaviateUp, component("store"), cfg.WeaviateURL) })
	defer context.AfterFunc(ctx, hs.Stop)() // SIGTERM: not ready from now on

	log.Info().Str("input_queue", cfg.InputQueue).Str("response_queue", cfg.ResponseQueue).
		Int("pool_size", cfg.PoolSize).Int("max_in_flight", cfg.MaxInFlight).Int("receivers", cfg.Receivers).
		Str("health_addr", hs.Addr()).Bool("metrics", cfg.MetricsEnabled).Bool("traces", cfg.TracesEndpoint != "").Str("version", o.Version).
		Str("weaviate_search", searchPath(weaviate)).
		Msg("worker started")
	if o.Started != nil {
		o.Started(hs.Addr())
	}
	wg.Go(func() {
		select {
		case <-weaviateUp.Reached():
			queueUp.Waiting("no ReceiveMessage has succeeded yet (the consumer logs why)")
		case <-ctx.Done():
			return
		}
		select {
		case <-queueUp.Reached():
			log.Info().Str("health_addr", hs.Addr()).Float64("waited_ms", float64(time.Since(started).Microseconds())/1000).
				Msg("worker consuming")
			if o.Ready != nil {
				o.Ready(hs.Addr())
			}
		case <-ctx.Done():
		}
	})

	runErr := cons.Run(ctx, h)
	hs.Stop()
	if errors.Is(runErr, consumer.ErrShutdownTimeout) {
		// The messages cut off were released to the queue: nothing is lost,
		// another worker takes them; this is still a clean stop.
		log.Warn().Err(runErr).Msg("shutdown bound reached; unfinished messages released")
		runErr = nil
	}

	stop := time.Unix(0, stopAt.Load())
	if stopAt.Load() == 0 { // Run ended by itself
		stop = time.Now()
	}
	closeCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), budget.closeBy(stop))
	if err := pub.Close(closeCtx); err != nil {
		log.Warn().Err(err).Msg("publisher did not flush everything")
	}
	if err := tasks.Close(closeCtx); err != nil {
		log.Warn().Err(err).Msg("pool did not finish its tasks")
	}
	cancel()
	stopMetrics() // Run sends what it holds, within budget.Flush
	flushCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), budget.flushBy(stop, time.Now()))
	if err := traces.Shutdown(flushCtx); err != nil { // meanwhile, the last metrics
		log.Warn().Err(err).Msg("traces not all exported")
	}
	cancel()
	shutdownCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), stop.Add(budget.Total()))
	_ = hs.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()

	s := cons.Stats()
	log.Info().Int64("received", s.Received).Int64("finished", s.Finished).Int64("failed", s.Failed).
		Int64("rejected", out.rejected.Load()).Int64("released", s.Released).Float64("shutdown_ms", float64(time.Since(stop).Microseconds())/1000).
		Msg("worker stopped")
	return runErr
}

// chain is the handler chain of every message, the one place the
// middlewares are composed (see internal/middleware for why in this order):
// the event's span (outermost, so that the log line has its trace id), the
// event's log line, panics recovered, a dependency's failure held in place
// until the stop (the dead-letter queue's too), poison to the dead-letter
// queue, the breaker's pause, then the pipeline.
func chain(pl handler.Handler, stop context.Context, deadLetters middleware.DeadLetters, gate middleware.Gate,
	out *outcomes, component func(string) zerolog.Logger, span handler.Middleware) handler.Handler {
	return handler.Chain(pl,
		span,
		middleware.Log(component("pipeline"), out),
		middleware.Recover(),
		middleware.Hold(middleware.HoldConfig{Stop: stop, Held: &out.held, Logger: component("consumer")}),
		middleware.DeadLetter(deadLetters, out),
		middleware.Pause(gate, stop),
	)
}

// outcomes counts what the middlewares report, for /debug/vars and the
// last log line, and passes it on to the metrics aggregator.
type outcomes struct {
	metrics                *metrics.Aggregator // nil: metrics off (its methods do nothing)
	rejected, failed, held atomic.Int64
}

var _ middleware.Observer = (*outcomes)(nil)

func (o *outcomes) MessageReceived(queueWait time.Duration) { o.metrics.MessageReceived(queueWait) }
func (o *outcomes) MessageRejected()                        { o.rejected.Add(1); o.metrics.MessageRejected() }
func (o *outcomes) MessageFailed()                          { o.failed.Add(1); o.metrics.MessageFailed() }

func (o *outcomes) stats() map[string]int64 {
	return map[string]int64{"Rejected": o.rejected.Load(), "Failed": o.failed.Load(), "Held": o.held.Load()}
}

// searchPath is how the Weaviate store searches, for the start line.
func searchPath(w *store.Store) string {
	if w == nil {
		return "none (benchmark store)"
	}
	return w.SearchPath()
}
