package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sivchari/kumo"

	"github.com/chatprep/chatprep/internal/devstack/kumofix"
)

// AWS is the kumo emulator serving SQS and CloudWatch in this process,
// behind the kumofix proxy, which makes kumo answer like SQS, counts calls
// by API and can inject faults.
type AWS struct {
	// URL is the endpoint for AWS_ENDPOINT_URL, http://127.0.0.1:PORT.
	URL   string
	proxy *kumofix.Proxy
	srv   *kumo.Server
}

// Fault is what the AWS endpoint answers instead of forwarding a call, for
// fault tests (kumofix.Fault).
type Fault = kumofix.Fault

// kumoStart serializes kumo.NewServer: it wires process-wide state, so two
// servers created at once (parallel tests) race.
var kumoStart sync.Mutex

// StartAWS starts kumo and its proxy on free loopback ports. It is safe to
// call from parallel tests.
func StartAWS() (*AWS, error) {
	kumoStart.Lock()
	srv := kumo.NewServer()
	kumoStart.Unlock()
	p, err := kumofix.Start(srv.URL)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("start AWS proxy: %w", err)
	}
	return &AWS{URL: p.URL(), proxy: p, srv: srv}, nil
}

// Stop ends the emulator; its queues and metrics are gone.
func (a *AWS) Stop() {
	a.proxy.Close()
	a.srv.Close()
}

// Calls returns how many calls each API received, e.g.
// {"SQS.ReceiveMessage": 12, "CloudWatch.PutMetricData": 1}.
func (a *AWS) Calls() map[string]int64 { return a.proxy.Calls() }

// Stranded is the number of messages taken for long polls whose caller had
// gone: they come back after their visibility timeout, one receive more.
func (a *AWS) Stranded() int64 { return a.proxy.Stranded() }

// UnfaultedURL is a second endpoint to the same emulator (and the same
// proxy state) that SetFault never affects: a test's own producer and
// readers use it while the workers' endpoint, URL, fails. Its calls are
// counted in Calls too.
func (a *AWS) UnfaultedURL() string { return a.proxy.UnfaultedURL() }

// SetFault makes URL answer calls with f(api) instead of forwarding them
// (or, with Truncate, forward them and cut the answer short) while f
// returns a non-zero Fault; nil forwards everything.
func (a *AWS) SetFault(f func(api string) Fault) { a.proxy.SetFault(f) }

// AWSEndpoint is one more endpoint to the emulator with faults of its own
// (kumofix.Endpoint): tests that run at once each fault their own.
type AWSEndpoint = kumofix.Endpoint

// NewEndpoint starts one more endpoint to the same emulator whose SetFault
// affects only the calls made through it; Stop closes it if its owner did
// not.
func (a *AWS) NewEndpoint() (*AWSEndpoint, error) { return a.proxy.NewEndpoint() }

// Options configure a Stack.
type Options struct {
	// BinDir holds weaviate-server (built there when missing). Required.
	BinDir string
	// Progress receives progress lines (the first Weaviate build takes
	// minutes). Nil discards them.
	Progress io.Writer
	// WeaviateAPIKey, when set, makes Weaviate require this API key.
	WeaviateAPIKey string
	// Tracing also starts a Jaeger (built into BinDir when missing) and
	// points the workers' OTLP endpoint at it.
	Tracing bool
	// WeaviateDefaults runs Weaviate with its own memtable settings
	// (WeaviateOptions.Untuned), as Weaviate Cloud and most self-hosted
	// clusters run, instead of TunedEnv.
	WeaviateDefaults bool
}

// Stack is a running local stack: kumo and a Weaviate server, and Jaeger
// with Options.Tracing.
type Stack struct {
	AWS      *AWS
	Weaviate *Weaviate
	Jaeger   *Jaeger // nil without tracing
}

// Start starts kumo and a Weaviate server, building Weaviate first if needed.
// It does not create queues or collections: that is `worker setup`'s job
// (package setup).
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	bin, err := EnsureWeaviateBinary(ctx, opts.BinDir, opts.Progress)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(opts.Progress, "starting Weaviate…")
	w, err := StartWeaviate(ctx, WeaviateOptions{Binary: bin, APIKey: opts.WeaviateAPIKey, Untuned: opts.WeaviateDefaults})
	if err != nil {
		return nil, err
	}
	a, err := StartAWS()
	if err != nil {
		w.Stop()
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "Weaviate ready at %s (pid %d); SQS and CloudWatch (kumo) at %s\n", w.URL, w.Pid(), a.URL)
	s := &Stack{AWS: a, Weaviate: w}
	if opts.Tracing {
		if s.Jaeger, err = startJaeger(ctx, opts); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

func startJaeger(ctx context.Context, opts Options) (*Jaeger, error) {
	bin, err := EnsureJaegerBinary(ctx, opts.BinDir, opts.Progress)
	if err != nil {
		return nil, err
	}
	j, err := StartJaeger(ctx, JaegerOptions{Binary: bin})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "Jaeger ready (pid %d): OTLP/HTTP at %s, query API at %s\n", j.Pid(), j.OTLPURL, j.QueryURL)
	return j, nil
}

// Env is the environment a worker needs to use this stack, as KEY=VALUE
// lines: the emulator endpoint with dummy credentials, and the settings kumo
// needs (no metric timestamps, no request compression, no SQS MD5 checks;
// see LOCAL-STACK.md).
func (s *Stack) Env() []string {
	env := []string{
		"AWS_ENDPOINT_URL=" + s.AWS.URL,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=chatprep-local",
		"AWS_SECRET_ACCESS_KEY=chatprep-local",
		"AWS_DISABLE_REQUEST_COMPRESSION=true",
		"AWS_EC2_METADATA_DISABLED=true",
		"METRICS_TIMESTAMPS=false",
		"SQS_VERIFY_CHECKSUMS=false",
		"WEAVIATE_URL=" + s.Weaviate.URL,
		"WEAVIATE_GRPC_ADDR=" + s.Weaviate.GRPCAddr,
	}
	if s.Weaviate.opts.APIKey != "" {
		env = append(env, "WEAVIATE_API_KEY="+s.Weaviate.opts.APIKey)
	}
	if s.Jaeger != nil {
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+s.Jaeger.OTLPURL)
	}
	return env
}

// Stop ends Weaviate and Jaeger (by pid) and kumo and removes the data
// directories.
func (s *Stack) Stop() error {
	var errs []error
	if s.Weaviate != nil {
		errs = append(errs, s.Weaviate.Stop())
	}
	if s.Jaeger != nil {
		errs = append(errs, s.Jaeger.Stop())
	}
	if s.AWS != nil {
		s.AWS.Stop()
	}
	return errors.Join(errs...)
}
