// Package stacktest gives tests the real dependencies: one devstack (kumo and
// a Weaviate server process) per test binary, and for each test its own
// namespace on it — queue names and a chat-id prefix nobody else uses — so
// tests run in parallel without seeing each other's messages.
//
// A package that uses it calls Main from TestMain:
//
//	func TestMain(m *testing.M) { stacktest.Main(m) }
//
// and each test calls New(t). The Env it returns also carries the test's
// side of its queues (queues.go): Send to the input queue, Results and
// DeadLetters read back (decoded by contracttest), QueueDepth.
package stacktest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/setup"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/testflags"
)

var (
	once     sync.Once
	shared   *devstack.Stack
	startErr error
)

// Main runs the tests, then stops the shared stack if one was started and
// runs cleanups, checks that no goroutine outlived them (goleak), and exits.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stacktest: stop stack:", err)
			code = 1
		}
	}
	os.Exit(leakcheck.Check(code, leakcheck.KumoReaper, leakcheck.WeaviateClientFinalizer))
}

// Stack returns this test binary's stack, starting it on first use (the
// first start on a fresh machine builds Weaviate, which takes minutes).
func Stack(t testing.TB) *devstack.Stack {
	t.Helper()
	once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			startErr = err
			return
		}
		root, err := devstack.RepoRoot(wd)
		if err != nil {
			startErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		shared, startErr = devstack.Start(ctx, devstack.Options{BinDir: filepath.Join(root, "bin"), Progress: progress(),
			WeaviateDefaults: testflags.WeaviateDefaults()})
	})
	if startErr != nil {
		t.Fatalf("start the local stack: %v", startErr)
	}
	return shared
}

func progress() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// Jaeger starts a Jaeger of the test's own (free ports, memory storage),
// built into the repository's bin/ first when missing, and stops it by pid
// when the test ends. Point a worker at it with
// With("OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPURL).
func Jaeger(t testing.TB) *devstack.Jaeger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := devstack.RepoJaegerBinary(ctx, progress())
	if err != nil {
		t.Fatal(err)
	}
	j, err := devstack.StartJaeger(ctx, devstack.JaegerOptions{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.Stop(); err != nil {
			t.Error(err)
		}
	})
	return j
}

// Env is one test's namespace on the shared stack.
type Env struct {
	Stack *devstack.Stack
	// Config is the worker configuration for this namespace: the contract's
	// defaults, the stack's endpoints, and this test's own queues.
	Config config.Config
	// Vars are the environment variables that give a worker process Config.
	Vars map[string]string
	// Prefix is unique to this test; start chat ids with it.
	Prefix string
	// Queue URLs, created by setup.
	InputURL, DLQURL, ResponseURL string

	AWS        aws.Config
	SQS        *sqs.Client
	CloudWatch *cloudwatch.Client
}

// Option adjusts a test's environment before its queues are created.
type Option func(o *options)

type options struct {
	vars    map[string]string
	noSetup bool
}

// Standard makes the three queues standard (not FIFO) queues.
func Standard() Option {
	return func(o *options) {
		for _, k := range []string{"INPUT_QUEUE", "DLQ_QUEUE", "RESPONSE_QUEUE"} {
			o.vars[k] = strings.TrimSuffix(o.vars[k], ".fifo")
		}
	}
}

// With sets environment variables (e.g. "VISIBILITY_TIMEOUT", "3s").
func With(kv ...string) Option {
	return func(o *options) {
		for i := 0; i+1 < len(kv); i += 2 {
			o.vars[kv[i]] = kv[i+1]
		}
	}
}

// NoSetup leaves the queues uncreated (for tests of `worker setup` itself);
// the Env's queue URLs are then empty.
func NoSetup() Option {
	return func(o *options) { o.noSetup = true }
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// New creates this test's queues (with `worker setup`'s own code) and
// returns its namespace.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	st := Stack(t)
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	prefix := fmt.Sprintf("%s-%06x", strings.Trim(name, "-"), rand.Uint32()&0xffffff)
	vars := map[string]string{
		"INPUT_QUEUE":       prefix + "-in.fifo",
		"DLQ_QUEUE":         prefix + "-dlq.fifo",
		"RESPONSE_QUEUE":    prefix + "-out.fifo",
		"METRICS_NAMESPACE": "T-" + prefix,
		"HEALTH_ADDR":       "127.0.0.1:0",
		"LOG_LEVEL":         "warn",
		// A stop lets the poll in flight finish, and each poll ends within
		// SHUTDOWN_TIMEOUT: 5s keeps tests' stops quick (4s polls).
		"SHUTDOWN_TIMEOUT": "5s",
	}
	for _, kv := range st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	o := options{vars: vars}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("stacktest config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	awsCfg, err := awsconn.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Tests read the environment only through Vars: pin the credentials here
	// too, rather than let the SDK look for them on the machine.
	awsCfg.Credentials = aws.NewCredentialsCache(staticCreds{vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]})
	e := &Env{Stack: st, Config: cfg, Vars: vars, Prefix: prefix, AWS: awsCfg,
		SQS: awsconn.SQS(awsCfg, cfg), CloudWatch: cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) { o.DisableRequestCompression = true })}
	if o.noSetup {
		return e
	}
	steps, err := setup.Queues(ctx, e.SQS, cfg)
	if err != nil {
		t.Fatalf("stacktest setup: %v", err)
	}
	e.DLQURL, e.InputURL, e.ResponseURL = steps[0].URL, steps[1].URL, steps[2].URL
	schemaOnce.Do(func() { schemaErr = ensureSchema(ctx, cfg) })
	if schemaErr != nil {
		t.Fatalf("stacktest schema: %v", schemaErr)
	}
	return e
}

// The collections are shared by every test of the binary (tests keep apart
// by chat id), so they are created once.
var (
	schemaOnce sync.Once
	schemaErr  error
)

func ensureSchema(ctx context.Context, cfg config.Config) error {
	st, err := store.New(store.Config{URL: cfg.WeaviateURL, APIKey: cfg.WeaviateAPIKey, GRPCAddr: cfg.WeaviateGRPCAddr})
	if err != nil {
		return err
	}
	defer st.Close()
	return st.EnsureSchema(ctx)
}

// Environ is the process environment for a worker child: PATH and HOME from
// this process, and Vars.
func (e *Env) Environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range e.Vars {
		env = append(env, k+"="+v)
	}
	return env
}

// ChatID returns a chat id in this test's namespace.
func (e *Env) ChatID(name string) string { return e.Prefix + ":" + name }

type staticCreds struct{ id, secret string }

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "stacktest"}, nil
}
