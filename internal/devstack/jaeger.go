package devstack

import (
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
	"time"
)

// Jaeger, the tracing backend of the local stack: Jaeger v2 (the all-in-one
// built on the OpenTelemetry Collector), built from the module pinned in the
// repository's tools/go.mod (a module of its own: its dependencies stay out
// of chatprep's go.mod).
const (
	JaegerVersion    = "v1.76.0"
	JaegerPackage    = "github.com/jaegertracing/jaeger/cmd/jaeger"
	JaegerBinaryName = "jaeger"
)

// EnsureJaegerBinary returns binDir/jaeger, building it from the Go module
// proxy first when it is missing (about 3 minutes on 2 cores the first time),
// under a file lock like EnsureWeaviateBinary. binDir must be the bin/
// directory of a chatprep repository: the build runs in its tools/ module.
func EnsureJaegerBinary(ctx context.Context, binDir string, progress io.Writer) (string, error) {
	root, err := RepoRoot(binDir)
	if err != nil {
		return "", fmt.Errorf("build jaeger: %w", err)
	}
	return ensureBinary(ctx, binDir, JaegerBinaryName, "Jaeger "+JaegerVersion, progress, func(absBin string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(absBin, JaegerBinaryName), JaegerPackage)
		cmd.Dir = filepath.Join(root, "tools")
		return cmd
	})
}

// JaegerOptions configure one Jaeger process.
type JaegerOptions struct {
	// Binary is the jaeger executable. Required.
	Binary string
	// ReadyTimeout bounds the wait for its query API. Default 30s.
	ReadyTimeout time.Duration
}

// Jaeger is a running Jaeger process: an OTLP/HTTP receiver and the query
// API on free loopback ports, spans kept in memory. A module build has no
// web UI (it lives in another repository, built with npm): read traces with
// Trace, or `devstack trace`.
type Jaeger struct {
	// OTLPURL is the OTLP/HTTP receiver, http://127.0.0.1:PORT: a worker's
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLPURL string
	// QueryURL is the query API, http://127.0.0.1:PORT (/api/traces/<id>).
	QueryURL string

	opts      JaegerOptions
	dir, conf string

	mu   sync.Mutex
	proc *Process
}

// jaegerConfig is the Collector configuration: OTLP/HTTP in, memory
// storage, the query API (HTTP and gRPC) out, and none of the all-in-one's
// dozen other ports. Jaeger's tracing of its own queries is off: it would
// send them to 127.0.0.1:4317, whoever listens there, and wait 10 s at
// every stop for that export.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

const jaegerPrefix = "chatprep-jaeger-"

// StartJaeger starts Jaeger on free loopback ports with a temporary
// directory (its configuration and log) and waits until it answers.
func StartJaeger(ctx context.Context, opts JaegerOptions) (*Jaeger, error) {
	if opts.Binary == "" {
		return nil, errors.New("start jaeger: no binary given")
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	sweepStale(jaegerPrefix)
	dir, err := ownedTempDir(jaegerPrefix)
	if err != nil {
		return nil, fmt.Errorf("start jaeger: %w", err)
	}
	j := &Jaeger{opts: opts, dir: dir, conf: filepath.Join(dir, "config.yaml")}
	for attempt := 1; ; attempt++ { // a free port may be taken before Jaeger binds it
		ports, err := freePorts(3)
		if err == nil {
			j.OTLPURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
			j.QueryURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])
			err = os.WriteFile(j.conf, fmt.Appendf(nil, jaegerConfig, ports[1], ports[2], ports[0]), 0o644)
		}
		if err == nil {
			err = j.start(ctx)
		}
		if err == nil {
			return j, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (j *Jaeger) start(ctx context.Context) error {
	logPath := filepath.Join(j.dir, "jaeger.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("start jaeger: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(j.opts.Binary, "--config", j.conf)
	cmd.Dir, cmd.Stdout, cmd.Stderr = j.dir, logFile, logFile
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + j.dir}
	p, err := StartProcess(cmd)
	if err != nil {
		return fmt.Errorf("start jaeger: %w", err)
	}
	j.mu.Lock()
	j.proc = p
	j.mu.Unlock()
	if err := j.waitReady(ctx, p); err != nil {
		p.Kill()
		return fmt.Errorf("start jaeger: %w\n--- last lines of %s ---\n%s", err, logPath, tail(logPath, 20))
	}
	return nil
}

func (j *Jaeger) waitReady(ctx context.Context, p *Process) error {
	ctx, cancel := context.WithTimeout(ctx, j.opts.ReadyTimeout)
	defer cancel()
	otlp := strings.TrimPrefix(j.OTLPURL, "http://")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+"/api/services", nil)
		if resp, err := queryClient.Do(req); err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", otlp, time.Second); resp.StatusCode == http.StatusOK && err == nil {
				c.Close()
				return nil
			}
		}
		select {
		case <-p.Done():
			return errors.New("jaeger exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", j.opts.ReadyTimeout, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Pid is Jaeger's process id, 0 when it is not running.
func (j *Jaeger) Pid() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.proc == nil {
		return 0
	}
	return j.proc.Pid()
}

// Halt stops Jaeger (by pid) and keeps its ports and directory: Restart
// brings it back where it was, with no spans. For outage tests.
func (j *Jaeger) Halt() {
	j.mu.Lock()
	p := j.proc
	j.proc = nil
	j.mu.Unlock()
	if p != nil {
		if _, err := p.Stop(10 * time.Second); err != nil {
			p.Kill()
		}
	}
}

// Restart starts a halted Jaeger again on the same ports.
func (j *Jaeger) Restart(ctx context.Context) error {
	j.Halt()
	return j.start(ctx)
}

// Stop ends Jaeger (SIGTERM, then SIGKILL after 10s) and removes its
// directory.
func (j *Jaeger) Stop() error {
	j.Halt()
	if err := os.RemoveAll(j.dir); err != nil {
		return fmt.Errorf("remove jaeger directory: %w", err)
	}
	return nil
}

var queryClient = &http.Client{Timeout: 10 * time.Second}

// ErrNoTrace is Trace's error while Jaeger does not know the trace (yet:
// spans arrive in batches, a few seconds after they end).
var ErrNoTrace = errors.New("trace not found")

// Trace reads one trace from the query API at queryURL (GET
// /api/traces/<id>); id is a trace id, or a traceparent holding one.
func Trace(ctx context.Context, queryURL, id string) (*TraceData, error) {
	if _, rest, ok := strings.Cut(id, "-"); ok { // 00-<trace id>-<span id>-<flags>
		id, _, _ = strings.Cut(rest, "-")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(queryURL, "/")+"/api/traces/"+id, nil)
	if err != nil {
		return nil, err
	}
	resp, err := queryClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("read trace %s: %w", id, ErrNoTrace)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("read trace %s: status %d: %.200s", id, resp.StatusCode, b)
	}
	t, err := decodeTrace(b)
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	return t, nil
}

// Trace reads one trace from this Jaeger (see the function Trace).
func (j *Jaeger) Trace(ctx context.Context, id string) (*TraceData, error) {
	return Trace(ctx, j.QueryURL, id)
}

// TraceData is one trace as the query API returns it.
type TraceData struct {
	ID    string
	Spans []SpanData // in the API's order
}

// SpanData is one span of a trace.
type SpanData struct {
	SpanID    string
	ParentID  string // the CHILD_OF reference, "" for a root
	Operation string
	Service   string
	Start     time.Time
	Duration  time.Duration
	// Tags are the span's attributes, and Jaeger's own: span.kind,
	// otel.status_code (ERROR) and otel.status_description, error.
	Tags map[string]any
}

// Error is the span's error status description, and whether it has one.
func (s SpanData) Error() (string, bool) {
	desc, _ := s.Tags["otel.status_description"].(string)
	return desc, s.Tags["otel.status_code"] == "ERROR"
}

func decodeTrace(b []byte) (*TraceData, error) {
	var out struct {
		Data []struct {
			TraceID string `json:"traceID"`
			Spans   []struct {
				SpanID     string `json:"spanID"`
				Operation  string `json:"operationName"`
				References []struct {
					RefType string `json:"refType"`
					SpanID  string `json:"spanID"`
				} `json:"references"`
				StartTime int64 `json:"startTime"` // µs since the epoch
				Duration  int64 `json:"duration"`  // µs
				Tags      []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
				ProcessID string `json:"processID"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	if len(out.Data) != 1 {
		return nil, fmt.Errorf("%d traces in the answer, want 1", len(out.Data))
	}
	d := out.Data[0]
	t := &TraceData{ID: d.TraceID}
	for _, s := range d.Spans {
		sd := SpanData{SpanID: s.SpanID, Operation: s.Operation, Service: d.Processes[s.ProcessID].ServiceName,
			Start: time.UnixMicro(s.StartTime), Duration: time.Duration(s.Duration) * time.Microsecond, Tags: map[string]any{}}
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				sd.ParentID = r.SpanID
			}
		}
		for _, tag := range s.Tags {
			sd.Tags[tag.Key] = tag.Value
		}
		t.Spans = append(t.Spans, sd)
	}
	return t, nil
}
