package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/tokens"
)

// v2Commit is chatprep v2, the last commit before the v3 context (issue
// 17): row 1 runs its worker beside today's, on the same events, for the
// cost of v3.
const v2Commit = "1543ed6ce005259a27c2b263d65fa11270ac07cb"

// env is what every row shares: the binaries, one kumo for the whole run
// (kumo keeps its state in process-wide globals), and the report.
type env struct {
	root, tmp   string
	worker      string // bin of ./worker, built as `make build` does
	workerV2    string // bin of ./worker at v2Commit; "" when it could not be built (say, a shallow clone)
	workerCmp   string // bin of ./worker at -compare's commit; "" without it
	v2Err       error  // why not
	benchWorker string // bin of ./bench/cmd/benchworker
	echoWorker  string // bin of ./bench/cmd/echoworker
	weaviateBin string
	aws         *devstack.AWS
	harness     *callCounter // the harness's own AWS calls, by API
	report      *report
}

func newEnv(b *testing.B) *env {
	b.Helper()
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		b.Fatal(err)
	}
	e := &env{root: root, tmp: b.TempDir(), harness: newCallCounter(), report: newReport()}
	e.worker = filepath.Join(e.tmp, "worker")
	e.benchWorker = filepath.Join(e.tmp, "benchworker")
	e.echoWorker = filepath.Join(e.tmp, "echoworker")
	for _, c := range [][]string{
		{"build", "-trimpath", "-ldflags", "-s -w -X main.version=bench", "-o", e.worker, "./worker"},
		{"build", "-trimpath", "-o", e.benchWorker, "./bench/cmd/benchworker"},
		{"build", "-trimpath", "-o", e.echoWorker, "./bench/cmd/echoworker"},
	} {
		cmd := exec.Command("go", c...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	e.workerV2, e.v2Err = buildAt(root, v2Commit, filepath.Join(e.tmp, "worker-v2"), e.tmp)
	if *flagCompare != "" {
		if e.workerCmp, err = buildAt(root, *flagCompare, filepath.Join(e.tmp, "worker-compare"), e.tmp); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e.weaviateBin, err = devstack.EnsureWeaviateBinary(ctx, filepath.Join(root, "bin"), os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	e.aws, err = devstack.StartAWS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.aws.Stop)
	return e
}

// buildAt builds ./worker as it was at commit into out: the commit's tree
// from git (git archive, nothing in the repository changes), built with the
// module cache.
func buildAt(root, commit, out, tmp string) (string, error) {
	src, err := os.MkdirTemp(tmp, "src-")
	if err != nil {
		return "", err
	}
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var errb bytes.Buffer
	archive.Stderr, untar.Stderr = &errb, &errb
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return "", fmt.Errorf("git archive %s: %w: %s", short(commit), err, errb.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("untar %s: %w: %s", short(commit), err, errb.String())
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v2", "-o", out, "./worker")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the worker at %s: %w\n%s", short(commit), err, b)
	}
	return out, os.RemoveAll(src)
}

// short is a commit's first 12 characters (all of a shorter name).
func short(commit string) string { return commit[:min(12, len(commit))] }

// phase is one row's own Weaviate: started fresh and seeded with the same
// chats, so no row pays for the objects an earlier row wrote.
type phase struct {
	e       *env
	stack   *devstack.Stack
	store   *store.Store // the harness's client (seeding, the generators)
	seed    time.Duration
	settled time.Duration // the wait after the seed for Weaviate to go idle
}

// Chats and their seed: 100 chats of workload.SeedMessages messages.
const benchChats = 100

// startPhase starts a fresh Weaviate, seeds it with seed and waits until
// Weaviate has settled (flushed what the seed wrote): a measurement on a
// Weaviate still flushing measures the flush.
func (e *env) startPhase(b *testing.B, seed func(context.Context, *store.Store) error) *phase {
	b.Helper()
	return e.startPhaseOn(b, false, func(ctx context.Context, _ *devstack.Weaviate, st *store.Store) error { return seed(ctx, st) })
}

// startPhaseOn is startPhase on a Weaviate with its own memtable defaults
// when untuned (devstack.WeaviateOptions.Untuned), with a seed that may
// also write to the server directly.
func (e *env) startPhaseOn(b *testing.B, untuned bool, seed func(context.Context, *devstack.Weaviate, *store.Store) error) *phase {
	b.Helper()
	return e.startPhaseWith(b, phaseOptions{weaviate: devstack.WeaviateOptions{Untuned: untuned}}, seed)
}

// phaseOptions are a phase's server and collections.
type phaseOptions struct {
	weaviate devstack.WeaviateOptions // its Binary is the bench's
	tenants  int                      // the messages collection's (store.Config.Tenants; 0: the default)
}

// startPhaseWith is startPhaseOn with the server's options and the
// messages collection's tenants.
func (e *env) startPhaseWith(b *testing.B, po phaseOptions, seed func(context.Context, *devstack.Weaviate, *store.Store) error) *phase {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	po.weaviate.Binary = e.weaviateBin
	w, err := devstack.StartWeaviate(ctx, po.weaviate)
	if err != nil {
		b.Fatal(err)
	}
	p := &phase{e: e, stack: &devstack.Stack{AWS: e.aws, Weaviate: w}}
	b.Cleanup(p.stop)
	// Counting tokens as the worker's store does, so that seeded messages
	// are stored as the worker would store them.
	counter, err := tokens.New(tokens.DefaultEncoding)
	if err != nil {
		b.Fatal(err)
	}
	p.store, err = store.New(store.Config{URL: w.URL, GRPCAddr: w.GRPCAddr, Tokens: counter, Tenants: po.tenants})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.store.EnsureSchema(ctx); err != nil {
		b.Fatal(err)
	}
	// The seed has a deadline of its own: row 7 writes 263,217 messages,
	// into 64 tenants since issue 18, which took over 5 minutes on a
	// machine shared with other work.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer scancel()
	start := time.Now()
	if err := seed(sctx, w, p.store); err != nil {
		b.Fatal(err)
	}
	p.seed = time.Since(start)
	p.settled = settle(sctx, w.Pid())
	return p
}

func (p *phase) stop() {
	if p.store != nil {
		p.store.Close()
		p.store = nil
	}
	if p.stack != nil && p.stack.Weaviate != nil {
		if err := p.stack.Weaviate.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: stop weaviate:", err)
		}
		p.stack.Weaviate = nil
	}
}

// seedChats stores the seed messages of chats chats through the batched
// Put.
func seedChats(chats int) func(context.Context, *store.Store) error {
	return func(ctx context.Context, st *store.Store) error { return seed(ctx, st, chats) }
}

// seed stores every chat's seed messages through the batched Put.
func seed(ctx context.Context, st *store.Store, chats int) error {
	ids, sizes := make([]string, chats), make([]int, chats)
	for c := range chats {
		ids[c], sizes[c] = workload.ChatID(c), workload.SeedMessages
	}
	return seedN(ctx, st, ids, sizes)
}

// seedN stores sizes[i] seed messages of chat ids[i], for every i.
func seedN(ctx context.Context, st *store.Store, ids []string, sizes []int) error {
	return putChats(ctx, st, len(ids), func(i int) []event.Event { return workload.SeedN(ids[i], sizes[i]) })
}

// putChats stores the events of chats 0..n-1 (eventsOf(i), in order), from
// 64 goroutines sharing the store's batches, a chat at a time each.
func putChats(ctx context.Context, st *store.Store, n int, eventsOf func(i int) []event.Event) error {
	const workers = 64
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				c := int(next.Add(1)) - 1
				if c >= n {
					return
				}
				for _, ev := range eventsOf(c) {
					if err := st.Put(ctx, ev); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// vars is the environment of a worker of this phase on queues named after
// run: the stack's, then extra.
func (p *phase) vars(run string, extra map[string]string) map[string]string {
	v := map[string]string{
		"INPUT_QUEUE":       "bench-" + run + "-in.fifo",
		"DLQ_QUEUE":         "bench-" + run + "-dlq.fifo",
		"RESPONSE_QUEUE":    "bench-" + run + "-out.fifo",
		"METRICS_NAMESPACE": "Bench-" + run,
	}
	for _, kv := range p.stack.Env() {
		k, val, _ := strings.Cut(kv, "=")
		v[k] = val
	}
	for k, val := range extra {
		v[k] = val
	}
	return v
}

// sqsClient is the harness's SQS client for vars, counting its own calls.
func (e *env) sqsClient(ctx context.Context, vars map[string]string) (*sqs.Client, config.Config, error) {
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return nil, cfg, err
	}
	awsCfg, err := awsconn.Load(ctx, cfg)
	if err != nil {
		return nil, cfg, err
	}
	awsCfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: vars["AWS_ACCESS_KEY_ID"], SecretAccessKey: vars["AWS_SECRET_ACCESS_KEY"], Source: "bench"}, nil
	})
	awsCfg.HTTPClient = e.harness.wrap(awsCfg.HTTPClient)
	return awsconn.SQS(awsCfg, cfg), cfg, nil
}

// callCounter counts HTTP requests by AWS API, named as the devstack
// proxy names them ("SQS.SendMessageBatch"): every attempt, retries too, so
// that subtracting them from the proxy's counts leaves exactly the worker's.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int64
}

func newCallCounter() *callCounter { return &callCounter{calls: map[string]int64{}} }

func (c *callCounter) wrap(next aws.HTTPClient) aws.HTTPClient {
	return httpClientFunc(func(r *http.Request) (*http.Response, error) {
		api := r.Header.Get("X-Amz-Target")
		if svc, op, ok := strings.Cut(api, "."); ok && svc == "AmazonSQS" {
			api = "SQS." + op
		}
		c.mu.Lock()
		c.calls[api]++
		c.mu.Unlock()
		return next.Do(r)
	})
}

func (c *callCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

type httpClientFunc func(*http.Request) (*http.Response, error)

func (f httpClientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// diff is after - before, without zeros.
func diff(after, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// cpuClock reads CPU time: this process (the harness, kumo and its proxy),
// a process by pid (Weaviate), and the whole machine.
type cpuSample struct {
	at      time.Time
	self    time.Duration
	pid     time.Duration
	busy    time.Duration // all CPUs, all processes
	total   time.Duration // all CPUs, busy or idle
	loadavg string
}

func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pid > 0 {
		s.pid = procCPU(pid)
	}
	s.busy, s.total = machineCPU()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		s.loadavg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return s
}

const clockTick = 100 // USER_HZ on Linux

// procCPU is a process's user+system time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick
}

// machineCPU is the busy and total time of all CPUs from /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	var sum, idle int64
	for i, v := range f {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / clockTick, time.Duration(sum) * time.Second / clockTick
}

// freeAddr is a free loopback address for a worker's health endpoint.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// child is a worker process under test.
type child struct {
	cmd    *exec.Cmd
	proc   *devstack.Process
	health string
	stderr *tailBuffer
	lines  atomic.Int64 // log lines written
}

func startChild(ctx context.Context, name, bin string, args []string, vars map[string]string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "HEALTH_ADDR=" + addr}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	c := &child{cmd: cmd, health: "http://" + addr, stderr: &tailBuffer{max: 8 << 10}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = c.stderr
	c.proc, err = devstack.StartProcess(cmd)
	if err != nil {
		return nil, err
	}
	// The worker's log: one JSON line per event at info (its default),
	// read and dropped here as a log shipper would.
	var keep io.WriteCloser = nopCloser{io.Discard}
	if *flagLogs != "" {
		if keep, err = os.Create(filepath.Join(*flagLogs, name+".log")); err != nil {
			c.proc.Kill()
			return nil, err
		}
	}
	go func() {
		defer keep.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = keep.Write(append(sc.Bytes(), '\n'))
			if c.lines.Add(1) <= 3 || bytes.Contains(sc.Bytes(), []byte(`"level":"error"`)) {
				c.stderr.Write(append(sc.Bytes(), '\n'))
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	if err := c.waitReady(ctx); err != nil {
		c.proc.Kill()
		return nil, err
	}
	return c, nil
}

func (c *child) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.health+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.proc.Done():
			return fmt.Errorf("worker exited before it was ready (status %d):\n%s", c.proc.ExitCode(), c.stderr)
		case <-ctx.Done():
			return fmt.Errorf("worker not ready: %w\n%s", ctx.Err(), c.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// workerVars is the part of /debug/vars the harness reads.
type workerVars struct {
	Consumer struct {
		Received, Finished, Failed, Deleted, Released, Extended, LeasesLost int64
	} `json:"consumer"`
	Publisher struct{ Calls, Batches, Accepted, Failed, Retries uint64 } `json:"publisher"`
	Store     *store.Stats                                               `json:"store"`
	Metrics   struct{ Calls, Sent, Failures uint64 }                     `json:"metrics"`
}

func (c *child) vars(ctx context.Context) (workerVars, error) {
	var v workerVars
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.health+"/debug/vars", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// stop sends SIGTERM, waits for the drain and returns the child's CPU time
// (rusage) and peak RSS, read just before the stop (see Process.Memory).
func (c *child) stop() (cpu time.Duration, maxRSS int64, err error) {
	_, maxRSS, _ = c.proc.Memory() // 0 if unknown
	code, err := c.proc.Stop(60 * time.Second)
	if err == nil && code != 0 {
		err = fmt.Errorf("worker exited with status %d:\n%s", code, c.stderr)
	}
	<-c.proc.Done()
	if ps := c.cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return cpu, maxRSS, err
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var errIncomplete = errors.New("incomplete run")
