package app_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/testflags"
)

// TestMain gives this process the variables of the local stack that the
// AWS SDK reads from the process environment itself (app.Run takes the rest
// from its Config): the emulator's dummy credentials, no instance metadata,
// and no request compression, which kumo cannot read (LOCAL-STACK.md). A
// worker process gets the same from stacktest.Env.Environ.
func TestMain(m *testing.M) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "chatprep-local", "AWS_SECRET_ACCESS_KEY": "chatprep-local",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_DISABLE_REQUEST_COMPRESSION": "true",
	} {
		if err := os.Setenv(k, v); err != nil {
			panic(err)
		}
	}
	// The tests wait on Weaviate processes of their own (started, killed,
	// restarted) far more than they compute: 8 at once.
	if _, err := testflags.DefaultParallel(8); err != nil {
		panic(err)
	}
	stacktest.Main(m)
}

// worker is app.Run in this process, as `worker run` runs it.
type worker struct {
	logs   *logtest.Logs
	health string // the health endpoint's address
	cancel context.CancelFunc
	done   chan error
}

// startWorker runs the worker with cfg until the test ends (or stop), and
// waits until it is ready (it consumes).
func startWorker(t *testing.T, cfg config.Config, o app.Options) *worker {
	t.Helper()
	ready := make(chan string, 1)
	o.Ready = func(addr string) { ready <- addr }
	w := launch(t, cfg, o)
	select {
	case <-ready:
	case err := <-w.done:
		w.done <- err
		t.Fatalf("worker did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("worker not consuming after a minute")
	}
	return w
}

// launch runs the worker with cfg until the test ends (or stop), and waits
// only until its health endpoint listens.
func launch(t *testing.T, cfg config.Config, o app.Options) *worker {
	t.Helper()
	w := &worker{logs: logtest.NewLogs(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	started := make(chan string, 1)
	o.Stdout = w.logs
	o.Started = func(addr string) { started <- addr }
	go func() { w.done <- app.Run(ctx, cfg, o) }()
	t.Cleanup(func() {
		if err := w.stop(); err != nil && !errors.Is(err, errStopped) {
			t.Errorf("worker: %v", err)
		}
		// Every line the worker wrote, whatever the test did to it, is one
		// JSON object with each key once, and names its durations *_ms.
		for _, l := range w.logs.Malformed() {
			t.Errorf("log line is not one JSON object with each key once (%v): %s", l.Err, l.Raw)
		}
		logtest.CheckDurationKeys(t, w.logs.Lines())
	})
	select {
	case w.health = <-started:
	case err := <-w.done:
		w.done <- err
		t.Fatalf("worker did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("worker's health endpoint not listening after a minute")
	}
	return w
}

var errStopped = errors.New("already stopped")

// stop cancels the worker's context (SIGTERM) and returns what Run
// returned; it fails if Run takes longer than its shutdown bounds allow.
func (w *worker) stop() error {
	w.cancel()
	select {
	case err, ok := <-w.done:
		if !ok {
			return errStopped
		}
		close(w.done)
		return err
	case <-time.After(time.Minute):
		return errors.New("app.Run did not return within a minute of the stop")
	}
}

// running tells whether Run has not returned.
func (w *worker) running() bool {
	select {
	case err, ok := <-w.done:
		if ok {
			w.done <- err
		}
		return false
	default:
		return true
	}
}

// TestDecodeStrict: the log check itself rejects a key twice, at any depth.
func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		`{"level":"info","component":"consumer","n":1}`:           true,
		`{"a":{"b":1,"c":[{"d":1},{"d":2}]}}`:                     true,
		`{"level":"info","component":"consumer","component":"x"}`: false,
		`{"a":{"b":1,"b":2}}`:                                     false,
		`{"a":[{"d":1,"d":2}]}`:                                   false,
		`{"a":1} {"b":2}`:                                         false,
		`not json`:                                                false,
	} {
		if _, err := logtest.DecodeStrict(raw); (err == nil) != ok {
			t.Errorf("DecodeStrict(%s) = %v, want ok %v", raw, err, ok)
		}
	}
}
