package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/tokens"
)

// Config is the whole configuration of the worker. Field comments give the
// environment variable and its default.
type Config struct {
	Region               string        // AWS_REGION, default us-east-1
	AWSEndpoint          string        // AWS_ENDPOINT_URL, default unset (real AWS)
	InputQueue           string        // INPUT_QUEUE, default chat-events.fifo
	DLQQueue             string        // DLQ_QUEUE, default chat-events-dlq.fifo
	ResponseQueue        string        // RESPONSE_QUEUE, default chat-context.fifo
	MaxReceiveCount      int           // MAX_RECEIVE_COUNT, default 5
	WeaviateURL          string        // WEAVIATE_URL, default http://127.0.0.1:8080
	WeaviateAPIKey       string        // WEAVIATE_API_KEY, default unset; never logged
	WeaviateGRPCAddr     string        // WEAVIATE_GRPC_ADDR, default derived from WEAVIATE_URL (see GRPCAddrFor); "" when set to off
	PoolSize             int           // POOL_SIZE, default 64
	MaxInFlight          int           // MAX_IN_FLIGHT, default 256
	Receivers            int           // RECEIVERS, default 2
	VisibilityTimeout    time.Duration // VISIBILITY_TIMEOUT, default 30s
	TaskTimeout          time.Duration // TASK_TIMEOUT, default 2s
	ShutdownTimeout      time.Duration // SHUTDOWN_TIMEOUT, default 25s
	HistoryLimit         int           // HISTORY_LIMIT, default 10
	RelevanceLimit       int           // RELEVANCE_LIMIT, default 20 (passages)
	RelevanceNeighbours  int           // RELEVANCE_NEIGHBOURS, default 1
	ContextTokenBudget   int           // CONTEXT_TOKEN_BUDGET, default 2000; 0: no budget
	TokenEncoding        string        // TOKEN_ENCODING, default o200k_base
	BurstGap             time.Duration // BURST_GAP, default 2m; 0: no bursts
	RouteCarry           time.Duration // ROUTE_CARRY, default 30m; 0: no carry
	ReferencesLimit      int           // REFERENCES_LIMIT, default 10; 0: none
	MetricsNamespace     string        // METRICS_NAMESPACE, default ChatPrep
	MetricsEnabled       bool          // METRICS_ENABLED, default true
	MetricsFlushInterval time.Duration // METRICS_FLUSH_INTERVAL, default 60s
	MetricsTimestamps    bool          // METRICS_TIMESTAMPS, default true
	SQSVerifyChecksums   bool          // SQS_VERIFY_CHECKSUMS, default true
	HealthAddr           string        // HEALTH_ADDR, default 127.0.0.1:8081
	LogLevel             zerolog.Level // LOG_LEVEL, default info
	RoutesFile           string        // ROUTES_FILE, default unset (built-in rules)
	// TracesEndpoint is where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
	// else OTEL_EXPORTER_OTLP_ENDPOINT; default unset (no export). The
	// OTEL_* variables are read again by the OpenTelemetry SDK itself, from
	// the process environment (internal/tracing); they have no flags.
	TracesEndpoint string
	// TracesSampler is OTEL_TRACES_SAMPLER, lowercased; default
	// parentbased_always_on. With export the SDK reads it itself; without,
	// it decides only the sampled flag of a trace the worker starts.
	TracesSampler string
	// TracesSamplerArg is OTEL_TRACES_SAMPLER_ARG, the ratio of a
	// traceidratio sampler; default 1.
	TracesSamplerArg float64
}

// setting is one variable of the contract: its name, default, help and how it
// lands in Config. Parse errors say what was wanted; the caller names the variable.
type setting struct {
	env, def, help string
	set            func(c *Config, v string) error
}

// settings lists every variable, in CONTRACT.md's order.
var settings = []setting{
	{"AWS_REGION", "us-east-1", "AWS region", func(c *Config, v string) error {
		if !regionRE.MatchString(v) {
			return errors.New("not an AWS region name (like us-east-1)")
		}
		c.Region = v
		return nil
	}},
	{"AWS_ENDPOINT_URL", "", "AWS endpoint for an emulator, e.g. http://127.0.0.1:4566 (unset: real AWS)", func(c *Config, v string) error {
		if v != "" {
			if err := httpURL(v); err != nil {
				return err
			}
		}
		c.AWSEndpoint = v
		return nil
	}},
	{"INPUT_QUEUE", "chat-events.fifo", "name or URL of the queue the worker consumes", queue(func(c *Config) *string { return &c.InputQueue })},
	{"DLQ_QUEUE", "chat-events-dlq.fifo", "name or URL of the input queue's dead-letter queue", queue(func(c *Config) *string { return &c.DLQQueue })},
	{"RESPONSE_QUEUE", "chat-context.fifo", "name or URL of the queue results go to", queue(func(c *Config) *string { return &c.ResponseQueue })},
	{"MAX_RECEIVE_COUNT", "5", "receives before SQS moves a message to the dead-letter queue (set by setup)", intIn(1, 1000, func(c *Config) *int { return &c.MaxReceiveCount })},
	{"WEAVIATE_URL", "http://127.0.0.1:8080", "Weaviate REST endpoint", func(c *Config, v string) error {
		if err := httpURL(v); err != nil {
			return err
		}
		c.WeaviateURL = strings.TrimRight(v, "/")
		return nil
	}},
	{"WEAVIATE_API_KEY", "", "Weaviate API key, when the server requires one", func(c *Config, v string) error {
		c.WeaviateAPIKey = v
		return nil
	}},
	{"WEAVIATE_GRPC_ADDR", "", "Weaviate's gRPC endpoint host:port, used for searches (default: WEAVIATE_URL's host, port 50051; grpc-<host>:443 for Weaviate Cloud); off: GraphQL only", func(c *Config, v string) error {
		switch {
		case v == "":
			c.WeaviateGRPCAddr = GRPCAddrFor(c.WeaviateURL) // WEAVIATE_URL is read before
		case strings.EqualFold(v, "off"):
			c.WeaviateGRPCAddr = ""
		default:
			if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
				return errors.New("must be host:port, like weaviate:50051, or off")
			}
			c.WeaviateGRPCAddr = v
		}
		return nil
	}},
	{"POOL_SIZE", "64", "goroutines in the one shared preprocessing pool", intIn(1, 100000, func(c *Config) *int { return &c.PoolSize })},
	{"MAX_IN_FLIGHT", "256", "messages received and not finished, across all receivers", intIn(1, 100000, func(c *Config) *int { return &c.MaxInFlight })},
	{"RECEIVERS", "2", "concurrent long-poll loops", intIn(1, 1000, func(c *Config) *int { return &c.Receivers })},
	{"VISIBILITY_TIMEOUT", "30s", "visibility timeout asked for on receive, extended while working (whole seconds, 1s to 12h)", func(c *Config, v string) error {
		d, err := duration(v, time.Second, 12*time.Hour)
		if err == nil && d%time.Second != 0 {
			err = errors.New("must be whole seconds (SQS counts in seconds)")
		}
		c.VisibilityTimeout = d
		return err
	}},
	{"TASK_TIMEOUT", "2s", "bound on each preprocessing task", durationIn(time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.TaskTimeout })},
	{"SHUTDOWN_TIMEOUT", "25s", "after SIGTERM, how long in-flight messages may take to finish", durationIn(0, time.Hour, func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"HISTORY_LIMIT", "10", "recent messages per role", intIn(1, 1000, func(c *Config) *int { return &c.HistoryLimit })},
	{"RELEVANCE_LIMIT", "20", "relevant passages at most (0 turns relevance search off)", intIn(0, 1000, func(c *Config) *int { return &c.RelevanceLimit })},
	{"RELEVANCE_NEIGHBOURS", "1", "messages that follow a relevant hit and come with it (its reply)", intIn(0, 20, func(c *Config) *int { return &c.RelevanceNeighbours })},
	{"CONTEXT_TOKEN_BUDGET", "2000", "tokens history and relevant may take together (0: no budget, only the limits)", intIn(0, 1000000, func(c *Config) *int { return &c.ContextTokenBudget })},
	{"TOKEN_ENCODING", tokens.DefaultEncoding, "the tokenizer the budget counts in: " + strings.Join(tokens.Encodings(), " or "), func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if !slices.Contains(tokens.Encodings(), v) {
			return errors.New("must be " + strings.Join(tokens.Encodings(), " or "))
		}
		c.TokenEncoding = v
		return nil
	}},
	{"BURST_GAP", "2m", "consecutive user messages closer than this, with no assistant message between, are one burst (0: no bursts)", durationIn(0, 24*time.Hour, func(c *Config) *time.Duration { return &c.BurstGap })},
	{"ROUTE_CARRY", "30m", "a message matching no route rule takes the route of the chat's user messages of this long before it (0: off)", durationIn(0, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.RouteCarry })},
	{"REFERENCES_LIMIT", "10", "ERP references in a result at most (0: none)", intIn(0, 1000, func(c *Config) *int { return &c.ReferencesLimit })},
	{"METRICS_NAMESPACE", "ChatPrep", "CloudWatch namespace", func(c *Config, v string) error {
		if v == "" || len(v) > 255 || strings.HasPrefix(v, "AWS/") || strings.HasPrefix(v, ":") {
			return errors.New("must be 1-255 characters and not start with AWS/ or ':'")
		}
		c.MetricsNamespace = v
		return nil
	}},
	{"METRICS_ENABLED", "true", "false turns CloudWatch metrics off", boolean(func(c *Config) *bool { return &c.MetricsEnabled })},
	{"METRICS_FLUSH_INTERVAL", "60s", "how often aggregated metrics are sent", durationIn(time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.MetricsFlushInterval })},
	{"METRICS_TIMESTAMPS", "true", "false leaves the Timestamp off each datum (for emulators that refuse it, like kumo)", boolean(func(c *Config) *bool { return &c.MetricsTimestamps })},
	{"SQS_VERIFY_CHECKSUMS", "true", "false turns off the SDK's MD5 check of SQS answers (for kumo)", boolean(func(c *Config) *bool { return &c.SQSVerifyChecksums })},
	{"HEALTH_ADDR", "127.0.0.1:8081", "health endpoint address (/healthz, /readyz)", func(c *Config, v string) error {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return errors.New("must be host:port, like 127.0.0.1:8081")
		}
		c.HealthAddr = v
		return nil
	}},
	{"LOG_LEVEL", "info", "log level: trace, debug, info, warn, error", func(c *Config, v string) error {
		l, err := zerolog.ParseLevel(strings.ToLower(v))
		if err != nil || v == "" {
			return errors.New("must be one of trace, debug, info, warn, error, fatal, panic, disabled")
		}
		c.LogLevel = l
		return nil
	}},
	{"ROUTES_FILE", "", "JSON file of route rules (unset: built-in rules)", func(c *Config, v string) error {
		if v != "" {
			if _, err := os.Stat(v); err != nil {
				return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
			}
		}
		c.RoutesFile = v
		return nil
	}},
}

// otelSettings are OpenTelemetry's own variables of the contract. Its Go SDK
// reads them (and the other OTEL_* variables) itself, from the process
// environment (see internal/tracing), so they have no flags: a flag could
// not reach the SDK. Load checks them, so that a bad value stops the worker
// at start instead of being one SDK warning, and notes the endpoint.
var otelSettings = []setting{
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP base URL for traces (/v1/traces is appended), e.g. http://127.0.0.1:4318 (unset: no export)", traceURL},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "OTLP/HTTP URL for traces, used as it is; wins over OTEL_EXPORTER_OTLP_ENDPOINT", traceURL},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTLP encoding: http/protobuf or http/json (no gRPC exporter)", func(_ *Config, v string) error {
		if v != "http/protobuf" && v != "http/json" {
			return errors.New("must be http/protobuf or http/json: this worker exports OTLP over HTTP only (a collector's port 4318)")
		}
		return nil
	}},
	{"OTEL_SERVICE_NAME", "chatprep", "service.name of the spans", func(*Config, string) error { return nil }},
	{"OTEL_TRACES_SAMPLER", "parentbased_always_on", "which events are traced: " + strings.Join(samplers, ", "), func(c *Config, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if !slices.Contains(samplers, v) {
			return errors.New("must be one of " + strings.Join(samplers, ", "))
		}
		c.TracesSampler = v
		return nil
	}},
	{"OTEL_TRACES_SAMPLER_ARG", "", "the ratio of a traceidratio sampler, 0 to 1 (unset: 1)", func(c *Config, v string) error {
		c.TracesSamplerArg = 1
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return errors.New("must be a number from 0 to 1")
		}
		c.TracesSamplerArg = f
		return nil
	}},
}

// samplers are the OTEL_TRACES_SAMPLER values the Go SDK knows.
var samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// traceURL checks an OTLP endpoint and notes it: applied in order, the
// traces endpoint wins when both are set.
func traceURL(c *Config, v string) error {
	if v == "" {
		return nil
	}
	if err := httpURL(v); err != nil {
		return err
	}
	c.TracesEndpoint = v
	return nil
}

// allSettings are every variable Load reads: the contract's, then
// OpenTelemetry's.
func allSettings() []setting { return slices.Concat(settings, otelSettings) }

var (
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
)

// Defaults returns the configuration with every default of the contract.
func Defaults() Config {
	var c Config
	for _, s := range allSettings() {
		if err := s.set(&c, s.def); err != nil {
			panic(fmt.Sprintf("config: default of %s is invalid: %v", s.env, err))
		}
	}
	return c
}

// Flags registers one flag per named variable on fs (INPUT_QUEUE becomes
// --input-queue; every variable when names is empty; OpenTelemetry's OTEL_*
// have none: a flag could not reach the SDK) and returns a function
// that builds the Config from those variables in the environment,
// overridden by the flags that were set (LoadVars). Call it after fs.Parse.
func Flags(fs *flag.FlagSet, getenv func(string) string, names ...string) func() (Config, error) {
	read := selected(names)
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		if !read(s.env) {
			continue
		}
		v := new(string)
		values[s.env] = v
		def := s.def
		if s.env == "WEAVIATE_API_KEY" {
			def = "" // never echo a secret in --help
		}
		usage := fmt.Sprintf("%s (env %s)", s.help, s.env)
		fs.StringVar(v, FlagName(s.env), def, usage)
	}
	return func() (Config, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		return LoadVars(func(env string) string {
			if set[FlagName(env)] {
				return *values[env]
			}
			return getenv(env)
		}, names)
	}
}

// HasFlag tells whether Flags gives the variable a flag: every variable but
// OpenTelemetry's, which its SDK reads from the environment itself.
func HasFlag(env string) bool {
	return slices.ContainsFunc(settings, func(s setting) bool { return s.env == env })
}

// FlagName is the flag that overrides an environment variable.
func FlagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(env), "_", "-")
}

// Load builds the Config from getenv (os.Getenv in production); unset or empty
// variables take their defaults. All problems are reported together in one
// line, each naming its variable.
func Load(getenv func(string) string) (Config, error) { return LoadVars(getenv, nil) }

// LoadVars is Load for a command that reads only the named variables (every
// variable when names is empty): those are read and checked, with the rules
// between them; every other field holds its default, and a bad value in a
// variable the command does not read does not stop it. An unknown name
// panics: it is the program's mistake.
func LoadVars(getenv func(string) string, names []string) (Config, error) {
	read := selected(names)
	c := Defaults()
	var errs []string
	for _, s := range allSettings() {
		if !read(s.env) {
			continue
		}
		v, explicit := getenv(s.env), true
		if v == "" {
			v, explicit = s.def, false
		}
		if err := s.set(&c, v); err != nil {
			shown := v
			if s.env == "WEAVIATE_API_KEY" {
				shown = "…"
			}
			if explicit {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", s.env, shown, err))
			} else {
				errs = append(errs, fmt.Sprintf("%s: %v", s.env, err))
			}
		}
	}
	errs = append(errs, c.crossCheck(read)...)
	if len(errs) > 0 {
		return Config{}, &Error{Problems: errs}
	}
	return c, nil
}

// selected is the set of names as a function; every variable when names is
// empty.
func selected(names []string) func(string) bool {
	if len(names) == 0 {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if !slices.ContainsFunc(allSettings(), func(s setting) bool { return s.env == n }) {
			panic("config: unknown variable " + n)
		}
		set[n] = true
	}
	return func(n string) bool { return set[n] }
}

// crossCheck reports rules that involve more than one variable, among the
// variables read.
func (c *Config) crossCheck(read func(string) bool) []string {
	var errs []string
	if read("INPUT_QUEUE") && read("DLQ_QUEUE") && IsFIFO(c.InputQueue) != IsFIFO(c.DLQQueue) {
		errs = append(errs, fmt.Sprintf("DLQ_QUEUE=%q: a dead-letter queue must be FIFO exactly when INPUT_QUEUE (%q) is", c.DLQQueue, c.InputQueue))
	}
	names := map[string]string{}
	for _, q := range []struct{ env, v string }{{"INPUT_QUEUE", c.InputQueue}, {"DLQ_QUEUE", c.DLQQueue}, {"RESPONSE_QUEUE", c.ResponseQueue}} {
		if !read(q.env) {
			continue
		}
		n := QueueName(q.v)
		if other, dup := names[n]; dup {
			errs = append(errs, fmt.Sprintf("%s=%q: same queue as %s; the three queues must differ", q.env, q.v, other))
		}
		names[n] = q.env
	}
	if read("RECEIVERS") && read("MAX_IN_FLIGHT") && c.Receivers > c.MaxInFlight {
		errs = append(errs, fmt.Sprintf("RECEIVERS=%d: more long-poll loops than MAX_IN_FLIGHT (%d) can use", c.Receivers, c.MaxInFlight))
	}
	return errs
}

// Error lists every invalid variable. Its message is one line.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// Env lists the named variables (every variable when names is empty) with
// their defaults and meanings, in CONTRACT.md's order, for --help.
func Env(names ...string) [][3]string {
	read := selected(names)
	all := allSettings()
	out := make([][3]string, 0, len(all))
	for _, s := range all {
		if read(s.env) {
			out = append(out, [3]string{s.env, s.def, s.help})
		}
	}
	return out
}

// DefaultGRPCPort is Weaviate's gRPC port.
const DefaultGRPCPort = "50051"

// GRPCAddrFor is the gRPC endpoint of the Weaviate at weaviateURL, as
// Weaviate deploys it: the same host on port 50051; for a Weaviate Cloud
// cluster (a host under weaviate.cloud or weaviate.network) the host with
// "grpc-" in front, on 443. "" when the URL has no host.
func GRPCAddrFor(weaviateURL string) string {
	u, err := url.Parse(weaviateURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	host := u.Hostname()
	if h := strings.ToLower(host); strings.HasSuffix(h, ".weaviate.cloud") || strings.HasSuffix(h, ".weaviate.network") {
		if !strings.HasPrefix(h, "grpc-") {
			host = "grpc-" + host
		}
		return net.JoinHostPort(host, "443")
	}
	return net.JoinHostPort(host, DefaultGRPCPort)
}

// IsFIFO tells whether a queue name or URL names a FIFO queue.
func IsFIFO(nameOrURL string) bool {
	return strings.HasSuffix(QueueName(nameOrURL), ".fifo")
}

// QueueName returns the queue name of a name or URL.
func QueueName(nameOrURL string) string {
	if i := strings.LastIndexByte(nameOrURL, '/'); i >= 0 {
		return nameOrURL[i+1:]
	}
	return nameOrURL
}

// IsQueueURL tells whether v is a queue URL rather than a name.
func IsQueueURL(v string) bool {
	return strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")
}

func queue(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if IsQueueURL(v) {
			u, err := url.Parse(v)
			if err != nil || u.Host == "" || strings.Count(strings.Trim(u.Path, "/"), "/") != 1 {
				return errors.New("not a queue URL (want https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")
			}
		}
		name := QueueName(v)
		if !queueNameRE.MatchString(strings.TrimSuffix(name, ".fifo")) || len(name) > 80 {
			return errors.New("not a queue name: 1-80 characters of letters, digits, - and _, with .fifo at the end for a FIFO queue")
		}
		*field(c) = v
		return nil
	}
}

func intIn(lo, hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a whole number (want %d to %d)", lo, hi)
		}
		if n < lo || n > hi {
			return fmt.Errorf("out of range (want %d to %d)", lo, hi)
		}
		*field(c) = n
		return nil
	}
}

func duration(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, errors.New("not a duration (want e.g. 500ms, 30s, 2m)")
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("out of range (want %v to %v)", lo, hi)
	}
	return d, nil
}

func durationIn(lo, hi time.Duration, field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := duration(v, lo, hi)
		*field(c) = d
		return err
	}
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("not a boolean (want true or false)")
		}
		*field(c) = b
		return nil
	}
}

func httpURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an http(s) URL with a host, like http://127.0.0.1:8080")
	}
	return nil
}
