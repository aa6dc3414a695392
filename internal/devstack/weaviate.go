package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// WeaviateVersion is the Weaviate server version the stack builds and runs.
const WeaviateVersion = "v1.35.2"

// WeaviateModule is the Go package the server binary is built from.
const WeaviateModule = "github.com/weaviate/weaviate/cmd/weaviate-server"

// WeaviateOptions configure one Weaviate server process.
type WeaviateOptions struct {
	// Binary is the weaviate-server executable. Required.
	Binary string
	// DataDir holds the server's data. Empty: a fresh temporary directory,
	// removed by Stop.
	DataDir string
	// APIKey, when set, turns API-key authentication on (and anonymous
	// access off) with this one key.
	APIKey string
	// DBUsers, with APIKey, also turns on Weaviate's RBAC with APIKey's
	// user ("chatprep") as its root user, and database users, whose keys
	// Weaviate makes and can rotate, deactivate and activate through its API
	// (CreateDBUser, SetDBUserActive).
	DBUsers bool
	// ReadyTimeout bounds the wait for /v1/.well-known/ready. Default 60s.
	ReadyTimeout time.Duration
	// Env holds extra KEY=VALUE variables for the server, after (and so
	// overriding) the stack's own: modules, memtable tuning.
	Env []string
	// Untuned leaves TunedEnv out: the server runs with Weaviate's own
	// memtable defaults, as Weaviate Cloud users get them (the bench's
	// comparison with the Node peer runs so).
	Untuned bool
}

// TunedEnv is the server tuning chatprep recommends for Weaviate 1.35 under a
// steady write load (and the devstack uses): BM25 queries walk the text
// property's active in-memory write buffer, which by default holds 45-60 s
// of writes; with 300 writes/s that cut relevance searches from ~900/s to
// ~60/s on 2 cores. Flushing the buffer every few seconds keeps it small.
var TunedEnv = []string{
	"PERSISTENCE_MEMTABLES_MAX_ACTIVE_DURATION_SECONDS=5",
	"PERSISTENCE_MEMTABLES_MIN_ACTIVE_DURATION_SECONDS=1",
	"PERSISTENCE_MEMTABLES_FLUSH_DIRTY_AFTER_SECONDS=5",
}

// Weaviate is a running Weaviate server process.
type Weaviate struct {
	// URL is the REST endpoint, http://127.0.0.1:PORT.
	URL string
	// GRPCAddr is the gRPC endpoint, 127.0.0.1:PORT.
	GRPCAddr string

	opts    WeaviateOptions
	ownDir  bool
	logPath string
	env     []string
	args    []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// StartWeaviate starts a Weaviate server on free loopback ports and waits
// until it is ready.
func StartWeaviate(ctx context.Context, opts WeaviateOptions) (*Weaviate, error) {
	if opts.Binary == "" {
		return nil, errors.New("start weaviate: no server binary given")
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	w := &Weaviate{opts: opts}
	if opts.DataDir == "" {
		sweepStale(tempPrefix)
		dir, err := ownedTempDir(tempPrefix)
		if err != nil {
			return nil, fmt.Errorf("start weaviate: create data directory: %w", err)
		}
		w.opts.DataDir, w.ownDir = dir, true
	}
	// A free port can be taken by another process between freePorts and
	// Weaviate binding it (parallel test binaries start stacks at once):
	// then Weaviate exits at start, and it is started again on other ports.
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(7)
		if err != nil {
			w.removeDir()
			return nil, fmt.Errorf("start weaviate: %w", err)
		}
		w.configure(ports)
		err = w.start(ctx)
		if err == nil {
			return w, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			w.removeDir()
			return nil, err
		}
		if w.ownDir { // whatever the failed start wrote is for other ports
			_ = os.RemoveAll(filepath.Join(w.opts.DataDir, "data"))
		}
	}
}

// configure sets the server's address, environment and arguments for
// ports (HTTP, gRPC, gossip, data, raft, raft RPC, Prometheus).
func (w *Weaviate) configure(ports []int) {
	httpPort, grpcPort := ports[0], ports[1]
	w.URL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	w.GRPCAddr = "127.0.0.1:" + strconv.Itoa(grpcPort)
	w.logPath = filepath.Join(w.opts.DataDir, "weaviate.log")
	w.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + w.opts.DataDir,
		"PERSISTENCE_DATA_PATH=" + filepath.Join(w.opts.DataDir, "data"),
		"DEFAULT_VECTORIZER_MODULE=none",
		"AUTOSCHEMA_ENABLED=false",
		"CLUSTER_HOSTNAME=node1",
		"CLUSTER_ADVERTISE_ADDR=127.0.0.1",
		"CLUSTER_BIND_ADDR=127.0.0.1",
		"GRPC_PORT=" + strconv.Itoa(grpcPort),
		"CLUSTER_GOSSIP_BIND_PORT=" + strconv.Itoa(ports[2]),
		"CLUSTER_DATA_BIND_PORT=" + strconv.Itoa(ports[3]),
		"RAFT_PORT=" + strconv.Itoa(ports[4]),
		"RAFT_INTERNAL_RPC_PORT=" + strconv.Itoa(ports[5]),
		"PROMETHEUS_MONITORING_PORT=" + strconv.Itoa(ports[6]),
		"RAFT_BOOTSTRAP_EXPECT=1",
		// One node is its own quorum: nothing to tolerate network delay
		// for. Weaviate multiplies raft's timeouts by 5 by default, so a
		// start (and a restart) waited 5 s of heartbeat timeout before
		// the node elected itself and answered ready; with 1 it waits 1 s.
		"RAFT_TIMEOUTS_MULTIPLIER=1",
		"GO_PROFILING_DISABLE=true",
		"DISABLE_TELEMETRY=true",
		"LOG_LEVEL=warning",
		"QUERY_DEFAULTS_LIMIT=25",
	}
	if !w.opts.Untuned {
		w.env = append(w.env, TunedEnv...)
	}
	if w.opts.APIKey != "" {
		w.env = append(w.env,
			"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=false",
			"AUTHENTICATION_APIKEY_ENABLED=true",
			"AUTHENTICATION_APIKEY_ALLOWED_KEYS="+w.opts.APIKey,
			"AUTHENTICATION_APIKEY_USERS=chatprep",
		)
		if w.opts.DBUsers {
			w.env = append(w.env,
				"AUTHORIZATION_RBAC_ENABLED=true",
				"AUTHORIZATION_RBAC_ROOT_USERS=chatprep",
				"AUTHENTICATION_DB_USERS_ENABLED=true",
			)
		}
	} else {
		w.env = append(w.env, "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true")
	}
	w.env = append(w.env, w.opts.Env...)
	w.args = []string{"--host", "127.0.0.1", "--port", strconv.Itoa(httpPort), "--scheme", "http"}
}

func (w *Weaviate) start(ctx context.Context) error {
	logFile, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start weaviate: open log: %w", err)
	}
	cmd := exec.Command(w.opts.Binary, w.args...)
	cmd.Env = w.env
	cmd.Dir = w.opts.DataDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: a Ctrl-C in the terminal reaches us, not Weaviate, so
	// we stop it in order. Pdeathsig: if we die without stopping it, it dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start weaviate %s: %w", w.opts.Binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	w.mu.Lock()
	w.cmd, w.done = cmd, done
	w.mu.Unlock()

	if err := w.waitReady(ctx, done); err != nil {
		w.kill()
		return fmt.Errorf("start weaviate: %w\n--- last lines of %s ---\n%s", err, w.logPath, tail(w.logPath, 20))
	}
	return nil
}

func (w *Weaviate) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.URL+"/v1/.well-known/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("server exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", w.opts.ReadyTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// Pid is the server's process id, 0 when it is not running.
func (w *Weaviate) Pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil || w.cmd.Process == nil {
		return 0
	}
	return w.cmd.Process.Pid
}

// Kill ends the server at once with SIGKILL and keeps its data, as a crash
// would. Restart brings it back on the same ports.
func (w *Weaviate) Kill() {
	w.kill()
}

// Restart starts a killed or stopped server again on the same ports and data.
func (w *Weaviate) Restart(ctx context.Context) error {
	w.kill()
	return w.start(ctx)
}

// Stop ends the server (SIGTERM, then SIGKILL after 10s) and removes its data
// directory if the stack created it.
func (w *Weaviate) Stop() error {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.cmd = nil
	w.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	return w.removeDir()
}

func (w *Weaviate) kill() {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.cmd = nil
	w.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

func (w *Weaviate) removeDir() error {
	if !w.ownDir {
		return nil
	}
	if err := os.RemoveAll(w.opts.DataDir); err != nil {
		return fmt.Errorf("remove weaviate data %s: %w", w.opts.DataDir, err)
	}
	return nil
}

// freePorts reserves n distinct free loopback ports. They are released before
// return, so another process could take one in between; on loopback in a
// test run that is rare, and the server's start then fails loudly.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			lines--
			if lines == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

const (
	tempPrefix = "chatprep-weaviate-"
	ownerFile  = "owner.pid"
)

// ownedTempDir creates a temporary directory named prefix* and writes in it
// who owns it, so that a later stack can remove it if this process dies
// without stopping (SIGKILL).
func ownedTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix+"*")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepStale removes the directories of earlier stacks (prefix*) whose
// owning process is gone (killed before it could stop its stack). Their
// processes died with them (Pdeathsig); only the directory was left.
func sweepStale(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue // owner alive
		}
		_ = os.RemoveAll(d)
	}
}

// DataDir is the server's data directory.
func (w *Weaviate) DataDir() string { return w.opts.DataDir }
