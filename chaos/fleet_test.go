package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app/apptest"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/logtest"
)

// fleet is a scenario's worker processes: started, killed, stopped and, at
// the end, stopped for good (also when the test fails).
type fleet struct {
	t       testing.TB
	bin     string
	args    []string
	environ []string
	dir     string // log files

	mu      sync.Mutex
	seq     int
	workers []*worker
	final   []vars // /debug/vars of each worker stopped gracefully, just before
}

// worker is one worker process.
type worker struct {
	name   string
	proc   *devstack.Process
	log    *logSink
	health string // the health endpoint's address, from its start line
	killed bool
}

func newFleet(t testing.TB, bin string, args, environ []string) *fleet {
	f := &fleet{t: t, bin: bin, args: args, environ: environ, dir: t.TempDir()}
	if *logDir != "" {
		f.dir = filepath.Join(*logDir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		f.mu.Lock()
		ws := append([]*worker(nil), f.workers...)
		f.mu.Unlock()
		for _, w := range ws {
			if w.running() {
				w.proc.Kill() // by pid: a child this test started
			}
		}
		// Every complete line a worker wrote, on stdout or stderr, is one
		// JSON object with each key once and its durations in *_ms
		// (CONTRACT.md, Logs).
		for _, w := range ws {
			<-w.proc.Done()
			for _, l := range w.log.malformedLines() {
				t.Errorf("%s wrote a line that is not one JSON object with each key once and durations in *_ms: %s", w.name, l)
			}
		}
		if t.Failed() {
			for _, w := range ws {
				t.Logf("--- %s (pid %d): warnings, errors and last lines ---\n%s", w.name, w.proc.Pid(), w.log.excerpt(25, 8))
			}
		}
	})
	return f
}

// start starts one more worker and waits until it consumes.
func (f *fleet) start() *worker {
	f.t.Helper()
	return f.startWith()
}

// startN starts n more workers at once and waits until they all consume
// (each waits out its first poll of the queue, about a second).
func (f *fleet) startN(n int) {
	f.t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(f.bin, f.args...)
			cmd.Env = append([]string(nil), f.environ...)
			_, errs[i] = f.tryLaunch(cmd, true)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.t.Fatal(err)
	}
}

// startWith starts one more worker with extra environment variables (they
// override the fleet's) and waits until it consumes.
func (f *fleet) startWith(extra ...string) *worker {
	f.t.Helper()
	cmd := exec.Command(f.bin, f.args...)
	cmd.Env = append(append([]string(nil), f.environ...), extra...)
	return f.startCmd(cmd)
}

// startUnready starts one more worker like startWith, but waits only until
// its health endpoint listens ("worker started"): for a worker that is not
// meant to become ready.
func (f *fleet) startUnready(extra ...string) *worker {
	f.t.Helper()
	cmd := exec.Command(f.bin, f.args...)
	cmd.Env = append(append([]string(nil), f.environ...), extra...)
	return f.launch(cmd, false)
}

// startCmd starts cmd as one more worker (its output taken by the fleet)
// and waits until it consumes.
func (f *fleet) startCmd(cmd *exec.Cmd) *worker {
	f.t.Helper()
	return f.launch(cmd, true)
}

// launch starts cmd as one more worker and waits until it consumes (ready)
// or only until its health endpoint listens.
func (f *fleet) launch(cmd *exec.Cmd, ready bool) *worker {
	f.t.Helper()
	w, err := f.tryLaunch(cmd, ready)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// tryLaunch is launch, returning what went wrong (for any goroutine: only
// the test's may end the test).
func (f *fleet) tryLaunch(cmd *exec.Cmd, ready bool) (*worker, error) {
	f.mu.Lock()
	f.seq++
	name := fmt.Sprintf("w%d", f.seq)
	f.mu.Unlock()
	sink, err := newLogSink(filepath.Join(f.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = sink.stream(), sink.stream()
	proc, err := devstack.StartProcess(cmd)
	if err != nil {
		return nil, err
	}
	go func() {
		<-proc.Done() // its output is all written by then
		sink.close()
	}()
	w := &worker{name: name, proc: proc, log: sink}
	f.mu.Lock()
	f.workers = append(f.workers, w)
	f.mu.Unlock()
	wait, what := sink.ready, "consuming"
	if !ready {
		wait, what = sink.started, "started"
	}
	select {
	case <-wait:
		w.health = sink.healthAddr()
	case <-proc.Done():
		return nil, fmt.Errorf("worker %s exited with status %d before %s:\n%s", name, proc.ExitCode(), what, sink.excerpt(20, 20))
	case <-time.After(5 * time.Minute): // a liveness bound (see the worker tests' startRun)
		return nil, fmt.Errorf("worker %s not %s after 5 minutes:\n%s", name, what, sink.excerpt(20, 20))
	}
	return w, nil
}

// running returns the workers still running.
func (f *fleet) running() []*worker {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*worker
	for _, w := range f.workers {
		if w.running() {
			out = append(out, w)
		}
	}
	return out
}

func (w *worker) running() bool {
	select {
	case <-w.proc.Done():
		return false
	default:
		return true
	}
}

// kill ends w with SIGKILL, as a crash or an OOM kill would.
func (f *fleet) kill(w *worker) {
	w.killed = true
	w.proc.Kill()
}

// stop sends w SIGTERM and waits for it to drain and exit; it reports an
// error unless it exited 0 within grace. Its /debug/vars just before the
// signal are kept for the scenario's figures.
func (f *fleet) stop(w *worker, grace time.Duration) error {
	if v, err := debugVars(w.health); err == nil {
		f.mu.Lock()
		f.final = append(f.final, v)
		f.mu.Unlock()
	}
	start := time.Now()
	code, err := w.proc.Stop(grace)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	if code != 0 {
		return fmt.Errorf("%s exited with status %d after SIGTERM (%v)", w.name, code, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// stopAll stops every running worker at once, as a scale-in or the end of
// a deploy does.
func (f *fleet) stopAll(grace time.Duration) error {
	ws := f.running()
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { errs[i] = f.stop(w, grace) })
	}
	wg.Wait()
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// logs is every line the fleet's workers wrote to stdout and stderr.
func (f *fleet) logs() []byte {
	f.mu.Lock()
	ws := append([]*worker(nil), f.workers...)
	f.mu.Unlock()
	var all []byte
	for _, w := range ws {
		all = append(all, w.log.contents()...)
	}
	return all
}

// sum adds up one counter (section.name, e.g. consumer.Failed) over the
// /debug/vars of the workers stopped gracefully.
func (f *fleet) sum(section, name string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n float64
	for _, v := range f.final {
		if s, ok := v[section].(map[string]any); ok {
			if x, ok := s[name].(float64); ok {
				n += x
			}
		}
	}
	return n
}

// vars is a worker's /debug/vars.
type vars = map[string]any

func debugVars(addr string) (vars, error) { return apptest.DebugVars(addr) }

// logSink takes a worker's stdout and stderr (each through its own
// stream, so their lines never mix): it keeps every line in a file, checks
// that each is one JSON object with each key once and durations in *_ms,
// and notices the start
// lines ("worker started" and "worker consuming", with the health address).
type logSink struct {
	mu        sync.Mutex
	file      *os.File
	path      string
	health    string
	started   chan struct{}
	ready     chan struct{}
	isStarted bool
	isReady   bool
	malformed []string
}

func newLogSink(path string) (*logSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logSink{file: f, path: path, started: make(chan struct{}), ready: make(chan struct{})}, nil
}

// stream is one of the process's output streams into the sink.
func (s *logSink) stream() io.Writer { return &sinkStream{sink: s} }

type sinkStream struct {
	sink    *logSink
	partial []byte // guarded by sink.mu
}

func (w *sinkStream) Write(p []byte) (int, error) {
	s := w.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if err := s.line(w.partial[:i+1]); err != nil {
			return 0, err
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// line takes one complete line (with its newline). The caller holds s.mu.
func (s *logSink) line(raw []byte) error {
	if _, err := s.file.Write(raw); err != nil {
		return err
	}
	line := bytes.TrimSuffix(raw, []byte("\n"))
	if fields, err := logtest.DecodeStrict(string(line)); err != nil {
		s.malformed = append(s.malformed, string(line))
	} else if bad := logtest.DurationProblems(fields); len(bad) > 0 {
		s.malformed = append(s.malformed, fmt.Sprintf("(durations %v not in *_ms) %s", bad, line))
	}
	if s.isReady {
		return nil
	}
	var l struct {
		Message    string `json:"message"`
		HealthAddr string `json:"health_addr"`
	}
	if json.Unmarshal(line, &l) != nil {
		return nil
	}
	switch {
	case l.Message == "worker started" && !s.isStarted:
		s.health, s.isStarted = l.HealthAddr, true
		close(s.started)
	case l.Message == "worker consuming":
		s.health, s.isReady = l.HealthAddr, true
		close(s.ready)
	}
	return nil
}

// malformedLines are the complete lines that are not one JSON object with
// each key once. (A process killed mid-line leaves a last, partial line:
// never written, not checked.)
func (s *logSink) malformedLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.malformed...)
}

func (s *logSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.file.Close()
}

func (s *logSink) healthAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *logSink) contents() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := os.ReadFile(s.path)
	return b
}

// excerpt is the last warn and error lines (up to warns) and the last lines
// (up to last) of the log, for a failed test's report.
func (s *logSink) excerpt(warns, last int) string {
	var problems, tail []string
	sc := bufio.NewScanner(bytes.NewReader(s.contents()))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) || !strings.HasPrefix(l, "{") {
			problems = append(problems, l)
		}
		tail = append(tail, l)
	}
	problems = problems[max(0, len(problems)-warns):]
	tail = tail[max(0, len(tail)-last):]
	return strings.Join(problems, "\n") + "\n…\n" + strings.Join(tail, "\n")
}

// waitFor polls cond every interval until it holds or timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}
