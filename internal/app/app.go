// Package app is `worker run`: New wires the consumer, the handler chain
// (the middlewares around the pipeline, composed here and only here), the
// pipeline on the shared pool, the Weaviate store behind its circuit
// breaker, the publisher, the metrics aggregator and the health endpoint;
// Worker.Run runs them until the context ends and shuts them down in order
// within one deadline, stage by stage (see Shutdown and Worker.stages):
//
//  1. drain and acks: the consumer stops receiving, drains in-flight
//     messages within SHUTDOWN_TIMEOUT and flushes its acknowledgements;
//  2. close: the publisher flushes what is pending, the pool and the store
//     close;
//  3. flush: the metrics aggregator sends what it holds, and the tracer
//     provider the spans it still queues, on a context that outlived
//     receiving.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	"github.com/chatprep/chatprep/internal/tokens"
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

// Worker is one `worker run`, shaped like River's client: New wires every
// part and returns what in the configuration cannot work; Run runs them
// until its context ends and then shuts them down in order (see Shutdown
// and stages); Close releases a Worker that never ran.
type Worker struct {
	cfg      config.Config
	o        Options
	workerID string
	log      zerolog.Logger
	budget   Shutdown

	hs                  *health.Server
	weaviateUp, queueUp *health.Dependency

	st       pipeline.Store // the store the pipeline uses (Weaviate, or Options.Store)
	weaviate *store.Store   // nil with Options.Store
	agg      *metrics.Aggregator
	traces   *tracing.Provider
	tasks    *pool.Pool
	pub      *publish.Publisher
	brk      *breaker.Breaker
	cons     *consumer.Consumer
	out      *outcomes

	pipeline    handler.Handler
	deadLetters middleware.DeadLetters
	startedAt   time.Time

	// open are what New opened, in order: Close (or a failed New)
	// releases them in reverse.
	open []func(context.Context) error
	ran  bool
}

// New wires a worker for cfg: the AWS clients (credentials checked), the
// three queues (each must exist), the health endpoint (listening, not
// ready), the Weaviate store, metrics, tracing, the pool, the publisher, the
// breaker, the pipeline and the consumer with its handler chain. It
// receives nothing and calls no dependency but AWS's to find the queues. A
// setting that cannot work is a *ConfigError naming its variable.
func New(ctx context.Context, cfg config.Config, o Options) (w *Worker, err error) {
	w = &Worker{cfg: cfg, o: o, workerID: cmp.Or(o.WorkerID, pipeline.WorkerID()), budget: ShutdownBudget(cfg.ShutdownTimeout),
		startedAt: time.Now()}
	w.log = Logger(cfg, o.Stdout, w.workerID)
	defer func() {
		if err != nil {
			_ = w.Close()
			w = nil
		}
	}()

	router := route.Builtin()
	if cfg.RoutesFile != "" {
		r, err := route.Load(cfg.RoutesFile)
		if err != nil {
			return w, &ConfigError{Var: "ROUTES_FILE", Err: err}
		}
		router = r
	}

	awsCfg, sqsClient, urls, err := w.connectAWS(ctx)
	if err != nil {
		return w, err
	}

	if w.hs, err = health.Listen(cfg.HealthAddr, w.component("health")); err != nil {
		return w, &ConfigError{Var: "HEALTH_ADDR", Err: err}
	}
	w.opened(func(context.Context) error { return w.hs.Close() })
	// Ready once Weaviate and the input queue were reached (in this
	// order: nothing is received before Weaviate answered once).
	w.weaviateUp, w.queueUp = w.hs.Require("weaviate"), w.hs.Require("input_queue")
	w.queueUp.Waiting("receiving starts once weaviate is reached")

	counter, err := tokens.New(cfg.TokenEncoding)
	if err != nil {
		return w, &ConfigError{Var: "TOKEN_ENCODING", Err: err}
	}
	w.st = o.Store
	if w.st == nil {
		w.weaviate, err = store.New(store.Config{
			URL: cfg.WeaviateURL, APIKey: cfg.WeaviateAPIKey, GRPCAddr: cfg.WeaviateGRPCAddr,
			MaxConns: cfg.PoolSize, Logger: w.component("store"), Tokens: counter,
		})
		if err != nil {
			return w, fmt.Errorf("weaviate store: %w", err)
		}
		w.opened(func(context.Context) error { w.closeStore(); return nil })
		w.st = w.weaviate
	}

	if cfg.MetricsEnabled { // else nil: its methods do nothing
		w.agg, err = metrics.New(awsconn.CloudWatch(awsCfg), metrics.Config{
			Namespace: cfg.MetricsNamespace, FlushInterval: cfg.MetricsFlushInterval,
			OmitTimestamps: !cfg.MetricsTimestamps, Routes: router.Names(),
			FinalFlushTimeout: w.budget.Flush, Logger: w.component("metrics"),
		})
		if err != nil {
			return w, fmt.Errorf("metrics: %w", err)
		}
	}

	w.traces, err = tracing.New(ctx, tracing.Config{Export: cfg.TracesEndpoint != "", ServiceVersion: o.Version,
		InstanceID: w.workerID, Sampler: cfg.TracesSampler, SamplerArg: cfg.TracesSamplerArg, Logger: w.component("tracing")})
	if err != nil {
		return w, fmt.Errorf("tracing: %w", err)
	}
	w.opened(w.traces.Shutdown)
	tracer := w.traces.Tracer()

	if w.tasks, err = pool.New(pool.Config{Size: cfg.PoolSize, TaskTimeout: cfg.TaskTimeout}); err != nil {
		return w, fmt.Errorf("pool: %w", err)
	}
	w.opened(w.tasks.Close)
	if w.pub, err = publish.New(sqsClient, publish.Config{QueueURL: urls["RESPONSE_QUEUE"], Tracer: tracer}); err != nil {
		return w, fmt.Errorf("publisher: %w", err)
	}
	w.opened(w.pub.Close)
	if w.brk, err = newBreaker(w.st, w.agg, w.component("breaker")); err != nil {
		return w, fmt.Errorf("breaker: %w", err)
	}
	pl, err := pipeline.New(pipelineConfig(cfg, w.workerID, w.component("pipeline")),
		pipeline.Deps{Store: GuardStore(w.st, w.brk), Publisher: w.pub, Pool: w.tasks, Router: router, Tokens: counter, Metrics: w.agg, Tracer: tracer})
	if err != nil {
		return w, fmt.Errorf("pipeline: %w", err)
	}
	drain := w.budget.Drain
	if drain == 0 {
		drain = -1 // the consumer reads 0 as "default"; SHUTDOWN_TIMEOUT=0 means do not wait
	}
	w.cons, err = consumer.New(sqsClient, consumer.Config{
		QueueURL: urls["INPUT_QUEUE"], Receivers: cfg.Receivers, MaxInFlight: cfg.MaxInFlight,
		VisibilityTimeout: cfg.VisibilityTimeout, ShutdownTimeout: drain, FinalFlushTimeout: w.budget.Acks,
		Gate: afterGate{first: w.weaviateUp.Reached(), then: w.brk}, Reached: w.queueUp.Reach, Logger: w.component("consumer"),
		StopHint: o.StopHint,
	})
	if err != nil {
		return w, fmt.Errorf("consumer: %w", err)
	}
	w.out = &outcomes{metrics: w.agg}
	w.pipeline = pl
	w.deadLetters = dlq.New(sqsbatch.NewSender(dlq.SQSAPI(sqsClient), urls["DLQ_QUEUE"], sqsbatch.Config{}), config.IsFIFO(cfg.DLQQueue))
	w.hs.HandleVars(w.debugVars)
	w.hs.SetDetail(func() map[string]any { return breakerDetail(w.brk) })
	return w, nil
}

// connectAWS loads the AWS configuration, checks that it has credentials,
// and finds the three queues: their URLs by variable name.
func (w *Worker) connectAWS(ctx context.Context) (aws.Config, *sqs.Client, map[string]string, error) {
	cfg := w.cfg
	// The SDK's own warnings (instance metadata, response bodies) go
	// through the worker's logger; with LOG_LEVEL=debug also its retries.
	awsCfg, err := awsconn.Load(ctx, cfg, awsconfig.WithLogger(logbridge.AWS(w.component("aws-sdk"))),
		awsconfig.WithClientLogMode(clientLogMode(cfg.LogLevel)))
	if err != nil {
		return aws.Config{}, nil, nil, startError(err)
	}
	if err := awsconn.CheckCredentials(ctx, awsCfg); err != nil {
		return aws.Config{}, nil, nil, startError(err)
	}
	sqsClient := awsconn.SQS(awsCfg, cfg)
	urls := map[string]string{}
	for _, q := range []struct{ env, v string }{{"INPUT_QUEUE", cfg.InputQueue}, {"DLQ_QUEUE", cfg.DLQQueue}, {"RESPONSE_QUEUE", cfg.ResponseQueue}} {
		u, err := queues.URL(ctx, sqsClient, q.v)
		var nf *queues.NotFoundError
		if errors.As(err, &nf) {
			return aws.Config{}, nil, nil, &ConfigError{Var: q.env, Err: err}
		}
		if err != nil {
			return aws.Config{}, nil, nil, startError(awsconn.Explain(err, cfg))
		}
		urls[q.env] = u
	}
	return awsCfg, sqsClient, urls, nil
}

// Run is New, then Worker.Run.
func Run(ctx context.Context, cfg config.Config, o Options) error {
	w, err := New(ctx, cfg, o)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// component is the logger of one part of the worker.
func (w *Worker) component(name string) zerolog.Logger {
	return w.log.With().Str("component", name).Logger()
}

// opened records what Close releases.
func (w *Worker) opened(closeFn func(context.Context) error) { w.open = append(w.open, closeFn) }

// Close releases what New opened, within FlushTimeout, when Run was not
// called (Run's shutdown releases everything itself). It is safe to call
// more than once.
func (w *Worker) Close() error {
	if w.ran {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	var errs []error
	for i := len(w.open) - 1; i >= 0; i-- {
		errs = append(errs, w.open[i](ctx))
	}
	w.open = nil
	return errors.Join(errs...)
}

// Run runs the worker until ctx ends (SIGTERM), then shuts it down within
// the shutdown budget (see stages) and returns nil, or the error that
// stopped it. Call it once.
func (w *Worker) Run(ctx context.Context) error {
	w.ran = true
	var stopAt atomic.Int64 // UnixNano of SIGTERM
	defer context.AfterFunc(ctx, func() { stopAt.Store(time.Now().UnixNano()) })()
	started := time.Now()
	h := chain(w.pipeline, ctx, w.deadLetters, w.brk, w.out, w.component,
		tracing.Middleware(w.traces.Tracer(), config.QueueName(w.cfg.InputQueue)))

	var bg sync.WaitGroup
	bg.Go(func() {
		if err := w.hs.Serve(); err != nil {
			w.log.Error().Err(err).Msg("health endpoint stopped")
		}
	})
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	metricsDone := make(chan struct{})
	go func() { defer close(metricsDone); _ = w.agg.Run(metricsCtx) }()
	bg.Go(func() { awaitWeaviate(ctx, w.st, w.weaviateUp, w.component("store"), w.cfg.WeaviateURL) })
	bg.Go(func() { w.announceReady(ctx, started) })
	defer context.AfterFunc(ctx, w.hs.Stop)() // SIGTERM: not ready from now on

	w.log.Info().Str("input_queue", w.cfg.InputQueue).Str("response_queue", w.cfg.ResponseQueue).
		Int("pool_size", w.cfg.PoolSize).Int("max_in_flight", w.cfg.MaxInFlight).Int("receivers", w.cfg.Receivers).
		Str("health_addr", w.hs.Addr()).Bool("metrics", w.cfg.MetricsEnabled).Bool("traces", w.cfg.TracesEndpoint != "").
		Str("version", w.o.Version).Str("weaviate_search", searchPath(w.weaviate)).
		Msg("worker started")
	if w.o.Started != nil {
		w.o.Started(w.hs.Addr())
	}

	// The consumer's Run is the first two stages of the shutdown (Drain,
	// Acks): it returns once its messages are finished or released and
	// acknowledged.
	runErr := w.cons.Run(ctx, h)
	w.hs.Stop()
	if errors.Is(runErr, consumer.ErrShutdownTimeout) {
		// The messages cut off were released to the queue: nothing is lost,
		// another worker takes them; this is still a clean stop.
		w.log.Warn().Err(runErr).Msg("shutdown bound reached; unfinished messages released")
		runErr = nil
	}
	stop := time.Unix(0, stopAt.Load())
	if stopAt.Load() == 0 { // Run ended by itself
		stop = time.Now()
	}
	w.shutdown(ctx, stop, w.stages(stopMetrics, metricsDone))
	bg.Wait()

	s := w.cons.Stats()
	w.log.Info().Int64("received", s.Received).Int64("finished", s.Finished).Int64("failed", s.Failed).
		Int64("rejected", w.out.rejected.Load()).Int64("released", s.Released).Float64("shutdown_ms", float64(time.Since(stop).Microseconds())/1000).
		Msg("worker stopped")
	return runErr
}

// announceReady logs (and tells Options.Ready) when the worker is ready:
// Weaviate reached, then its input queue.
func (w *Worker) announceReady(ctx context.Context, started time.Time) {
	select {
	case <-w.weaviateUp.Reached():
		w.queueUp.Waiting("no ReceiveMessage has succeeded yet (the consumer logs why)")
	case <-ctx.Done():
		return
	}
	select {
	case <-w.queueUp.Reached():
		w.log.Info().Str("health_addr", w.hs.Addr()).Float64("waited_ms", float64(time.Since(started).Microseconds())/1000).
			Msg("worker consuming")
		if w.o.Ready != nil {
			w.o.Ready(w.hs.Addr())
		}
	case <-ctx.Done():
	}
}

// debugVars are the worker's counters at /debug/vars.
func (w *Worker) debugVars() map[string]any {
	// runtime/metrics, not runtime.ReadMemStats: that stops the world on
	// every read (7% of the worker's CPU when the bench polled this 20
	// times a second). heap_alloc and sys are MemStats' HeapAlloc and Sys
	// by their runtime/metrics names.
	mem := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	rtmetrics.Read(mem)
	v := map[string]any{
		"worker": w.workerID, "uptime_s": time.Since(w.startedAt).Seconds(),
		"goroutines": runtime.NumGoroutine(), "heap_alloc": mem[1].Value.Uint64(), "sys": mem[2].Value.Uint64(),
		// What the last collection found reachable: the heap a leak
		// grows, whatever GOGC lets heap_alloc and sys grow to.
		"heap_live": mem[0].Value.Uint64(),
		"consumer":  w.cons.Stats(), "handling": w.out.stats(),
		"publisher": w.pub.Stats(), "pool": w.tasks.Stats(),
		"metrics": w.agg.Stats(), "traces": w.traces.Stats(),
	}
	maps.Copy(v, breakerDetail(w.brk))
	if w.weaviate != nil {
		v["store"] = w.weaviate.Stats()
	}
	return v
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

// pipelineConfig is the pipeline's part of the configuration: a limit of 0
// turns its part off.
func pipelineConfig(cfg config.Config, workerID string, log zerolog.Logger) pipeline.Config {
	return pipeline.Config{
		HistoryLimit:   cfg.HistoryLimit,
		RelevanceLimit: max(cfg.RelevanceLimit, 1), NoRelevance: cfg.RelevanceLimit == 0,
		Neighbours: max(cfg.RelevanceNeighbours, 1), NoNeighbours: cfg.RelevanceNeighbours == 0,
		Budget: max(cfg.ContextTokenBudget, 1), NoBudget: cfg.ContextTokenBudget == 0,
		BurstGap: max(cfg.BurstGap, 1), NoBursts: cfg.BurstGap == 0,
		RouteCarry: max(cfg.RouteCarry, 1), NoCarry: cfg.RouteCarry == 0,
		ReferencesLimit: max(cfg.ReferencesLimit, 1), NoReferences: cfg.ReferencesLimit == 0,
		Worker: workerID, Logger: log,
	}
}
