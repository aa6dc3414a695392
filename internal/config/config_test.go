package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/config"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaultsMatchTheContract(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		Region: "us-east-1", InputQueue: "chat-events.fifo", DLQQueue: "chat-events-dlq.fifo",
		ResponseQueue: "chat-context.fifo", MaxReceiveCount: 5, WeaviateURL: "http://127.0.0.1:8080", WeaviateGRPCAddr: "127.0.0.1:50051",
		PoolSize: 64, MaxInFlight: 256, Receivers: 2, VisibilityTimeout: 30 * time.Second,
		TaskTimeout: 2 * time.Second, ShutdownTimeout: 25 * time.Second, HistoryLimit: 10, RelevanceLimit: 20,
		RelevanceNeighbours: 1, ContextTokenBudget: 2000, TokenEncoding: "o200k_base", BurstGap: 2 * time.Minute,
		RouteCarry: 30 * time.Minute, ReferencesLimit: 10,
		MetricsNamespace: "ChatPrep", MetricsEnabled: true, MetricsFlushInterval: 60 * time.Second,
		MetricsTimestamps: true, SQSVerifyChecksums: true, HealthAddr: "127.0.0.1:8081", LogLevel: zerolog.InfoLevel,
		TracesSampler: "parentbased_always_on", TracesSamplerArg: 1,
	}
	if c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if d := config.Defaults(); d != want {
		t.Errorf("Defaults() = %+v", d)
	}
}

func TestEnvironmentIsRead(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"INPUT_QUEUE": "https://sqs.eu-west-1.amazonaws.com/123456789012/in", "DLQ_QUEUE": "dlq",
		"RESPONSE_QUEUE": "out.fifo", "POOL_SIZE": "8", "VISIBILITY_TIMEOUT": "2m", "METRICS_ENABLED": "false",
		"LOG_LEVEL": "DEBUG", "AWS_REGION": "eu-west-1", "WEAVIATE_URL": "https://weaviate.internal:8443/",
		"CONTEXT_TOKEN_BUDGET": "0", "TOKEN_ENCODING": "cl100k_base", "BURST_GAP": "0", "ROUTE_CARRY": "1h",
		"RELEVANCE_NEIGHBOURS": "2", "REFERENCES_LIMIT": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ContextTokenBudget != 0 || c.TokenEncoding != "cl100k_base" || c.BurstGap != 0 || c.RouteCarry != time.Hour ||
		c.RelevanceNeighbours != 2 || c.ReferencesLimit != 0 {
		t.Errorf("v3 variables: got %+v", c)
	}
	if c.PoolSize != 8 || c.VisibilityTimeout != 2*time.Minute || c.MetricsEnabled || c.LogLevel != zerolog.DebugLevel ||
		c.Region != "eu-west-1" || c.WeaviateURL != "https://weaviate.internal:8443" || config.IsFIFO(c.InputQueue) {
		t.Errorf("got %+v", c)
	}
}

// TestBadValuesNameTheVariable: every bad value gives an error naming its
// variable, on one line.
func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ env, value, want string }{
		{"POOL_SIZE", "abc", "not a whole number"},
		{"POOL_SIZE", "-1", "out of range"},
		{"MAX_IN_FLIGHT", "0", "out of range"},
		{"RECEIVERS", "1.5", "not a whole number"},
		{"VISIBILITY_TIMEOUT", "30", "not a duration"},
		{"VISIBILITY_TIMEOUT", "1500ms", "whole seconds"},
		{"VISIBILITY_TIMEOUT", "13h", "out of range"},
		{"TASK_TIMEOUT", "-2s", "out of range"},
		{"SHUTDOWN_TIMEOUT", "soon", "not a duration"},
		{"METRICS_FLUSH_INTERVAL", "10ms", "out of range"},
		{"METRICS_ENABLED", "yes please", "not a boolean"},
		{"INPUT_QUEUE", "bad queue!", "not a queue name"},
		{"RESPONSE_QUEUE", "https://sqs/only-host", "not a queue URL"},
		{"WEAVIATE_URL", "127.0.0.1:8080", "http(s) URL"},
		{"AWS_ENDPOINT_URL", "localhost", "http(s) URL"},
		{"AWS_REGION", "Mars", "AWS region"},
		{"HEALTH_ADDR", "8081", "host:port"},
		{"LOG_LEVEL", "loud", "one of"},
		{"MAX_RECEIVE_COUNT", "0", "out of range"},
		{"RELEVANCE_NEIGHBOURS", "-1", "out of range"},
		{"CONTEXT_TOKEN_BUDGET", "lots", "not a whole number"},
		{"TOKEN_ENCODING", "p50k_base", "o200k_base or cl100k_base"},
		{"BURST_GAP", "2", "not a duration"},
		{"ROUTE_CARRY", "-5m", "out of range"},
		{"REFERENCES_LIMIT", "1001", "out of range"},
		{"ROUTES_FILE", "/does/not/exist.json", "cannot read"},
		{"METRICS_NAMESPACE", "AWS/SQS", "AWS/"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http(s) URL"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://collector:4317", "http(s) URL"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP over HTTP only"},
		{"OTEL_TRACES_SAMPLER", "xray", "one of"},
		{"OTEL_TRACES_SAMPLER_ARG", "1.5", "0 to 1"},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(map[string]string{tc.env: tc.value}))
			if err == nil {
				t.Fatalf("no error for %s=%q", tc.env, tc.value)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.env+"=") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, tc.env, tc.want)
			}
		})
	}
}

func TestCrossChecks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"fifo input, standard dlq", map[string]string{"DLQ_QUEUE": "dlq"}, "DLQ_QUEUE"},
		{"same queue twice", map[string]string{"RESPONSE_QUEUE": "chat-events.fifo"}, "must differ"},
		{"receivers above in-flight", map[string]string{"RECEIVERS": "10", "MAX_IN_FLIGHT": "4"}, "RECEIVERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSecretIsNeverEchoed(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_ = config.Flags(fs, env(map[string]string{"WEAVIATE_API_KEY": "s3cr3t"}))
	var usage strings.Builder
	fs.SetOutput(&usage)
	fs.PrintDefaults()
	if strings.Contains(usage.String(), "s3cr3t") {
		t.Error("--help shows the API key")
	}
}

func TestFlagsOverrideTheEnvironment(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	load := config.Flags(fs, env(map[string]string{"POOL_SIZE": "8", "RECEIVERS": "3"}))
	if err := fs.Parse([]string{"--pool-size", "16"}); err != nil {
		t.Fatal(err)
	}
	c, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if c.PoolSize != 16 || c.Receivers != 3 {
		t.Errorf("PoolSize=%d Receivers=%d, want 16 (flag) and 3 (env)", c.PoolSize, c.Receivers)
	}
}

// TestTracing: the traces endpoint wins over the base one; the OTEL_*
// variables are checked but have no flags (the SDK reads the environment).
func TestTracing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/v1/traces"}, "https://traces.example.com/v1/traces"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "ParentBased_TraceIDRatio", "OTEL_TRACES_SAMPLER_ARG": "0.1",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, ""},
	} {
		c, err := config.Load(env(tc.env))
		if err == nil && tc.env["OTEL_TRACES_SAMPLER"] != "" && (c.TracesSampler != "parentbased_traceidratio" || c.TracesSamplerArg != 0.1) {
			t.Errorf("%v: sampler %q %v", tc.env, c.TracesSampler, c.TracesSamplerArg)
		}
		if err != nil || c.TracesEndpoint != tc.want {
			t.Errorf("%v: TracesEndpoint %q, error %v; want %q", tc.env, c.TracesEndpoint, err, tc.want)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	_ = config.Flags(fs, env(nil))
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "otel-") {
			t.Errorf("flag --%s: the OpenTelemetry SDK could not see it", f.Name)
		}
	})
	if config.HasFlag("OTEL_SERVICE_NAME") || !config.HasFlag("POOL_SIZE") {
		t.Error("HasFlag: want no flag for OTEL_SERVICE_NAME, one for POOL_SIZE")
	}
}

func TestQueueNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, name string
		fifo     bool
	}{
		{"chat-events.fifo", "chat-events.fifo", true},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/chat-events.fifo", "chat-events.fifo", true},
		{"http://localhost:4566/000000000000/plain", "plain", false},
	} {
		if got := config.QueueName(tc.in); got != tc.name {
			t.Errorf("QueueName(%q) = %q, want %q", tc.in, got, tc.name)
		}
		if got := config.IsFIFO(tc.in); got != tc.fifo {
			t.Errorf("IsFIFO(%q) = %v", tc.in, got)
		}
	}
}

// TestWeaviateGRPCAddr: searches go over gRPC by default, at the address
// Weaviate (or Weaviate Cloud) serves it; off turns it off.
func TestWeaviateGRPCAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, grpc, want string }{
		{"", "", "127.0.0.1:50051"},
		{"http://weaviate:8080", "", "weaviate:50051"},
		{"https://abc123.c0.europe-west3.gcp.weaviate.cloud", "", "grpc-abc123.c0.europe-west3.gcp.weaviate.cloud:443"},
		{"https://my-sandbox.weaviate.network", "", "grpc-my-sandbox.weaviate.network:443"},
		{"http://[::1]:8080", "", "[::1]:50051"},
		{"http://weaviate:8080", "grpc.internal:6000", "grpc.internal:6000"},
		{"http://weaviate:8080", "off", ""},
		{"http://weaviate:8080", "OFF", ""},
	} {
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"WEAVIATE_URL": tc.url, "WEAVIATE_GRPC_ADDR": tc.grpc}[k]
		})
		if err != nil || cfg.WeaviateGRPCAddr != tc.want {
			t.Errorf("WEAVIATE_URL=%q WEAVIATE_GRPC_ADDR=%q: %q, %v; want %q", tc.url, tc.grpc, cfg.WeaviateGRPCAddr, err, tc.want)
		}
	}
	if _, err := config.Load(func(k string) string { return map[string]string{"WEAVIATE_GRPC_ADDR": "weaviate"}[k] }); err == nil ||
		!strings.Contains(err.Error(), "WEAVIATE_GRPC_ADDR") {
		t.Errorf("a gRPC address without a port: %v, want an error naming the variable", err)
	}
}

// TestLoadVarsReadsOnlyTheNamedVariables: a command reads and checks its
// own variables; a bad value elsewhere does not stop it, and the fields it
// does not read hold their defaults.
func TestLoadVarsReadsOnlyTheNamedVariables(t *testing.T) {
	t.Parallel()
	bad := env(map[string]string{"POOL_SIZE": "many", "RESPONSE_QUEUE": "in.fifo", "INPUT_QUEUE": "in.fifo", "DLQ_QUEUE": "dlq.fifo", "HEALTH_ADDR": "127.0.0.1:9"})
	c, err := config.LoadVars(bad, []string{"INPUT_QUEUE", "DLQ_QUEUE", "HEALTH_ADDR"})
	if err != nil {
		t.Fatal(err)
	}
	if c.InputQueue != "in.fifo" || c.HealthAddr != "127.0.0.1:9" || c.PoolSize != 64 || c.ResponseQueue != "chat-context.fifo" {
		t.Errorf("got %+v", c)
	}
	if _, err := config.LoadVars(bad, []string{"INPUT_QUEUE", "RESPONSE_QUEUE"}); err == nil || !strings.Contains(err.Error(), "must differ") {
		t.Errorf("two read queues the same: err %v", err)
	}
	if _, err := config.LoadVars(bad, []string{"POOL_SIZE"}); err == nil || !strings.Contains(err.Error(), "POOL_SIZE") {
		t.Errorf("a read bad value: err %v", err)
	}
	if got := config.Env("HEALTH_ADDR", "AWS_REGION"); len(got) != 2 || got[0][0] != "AWS_REGION" || got[1][0] != "HEALTH_ADDR" {
		t.Errorf("Env in contract order: %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown variable name did not panic")
		}
	}()
	_, _ = config.LoadVars(bad, []string{"NO_SUCH_VARIABLE"})
}
