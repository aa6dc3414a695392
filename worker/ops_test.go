package main_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/setup"
)

// strictLines fails for every line of out that is not one JSON object with
// each key once, and returns the lines.
func strictLines(t *testing.T, stream, out string) []logtest.Line {
	t.Helper()
	var lines []logtest.Line
	for _, raw := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if raw == "" {
			continue
		}
		fields, err := logtest.DecodeStrict(raw)
		if err != nil {
			t.Errorf("%s line is not one JSON object with each key once (%v): %s", stream, err, raw)
		}
		lines = append(lines, logtest.Line{Raw: raw, Fields: fields, Err: err})
	}
	return lines
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fakeIMDS is an EC2 instance-metadata service that refuses tokens (so the
// SDK warns and falls back to IMDSv1) and knows no role.
func fakeIMDS(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestStartupErrorsNameTheVariable runs `worker run` into each start-up
// failure an operator meets before any message: no credentials at all, an
// endpoint where nothing answers, a region AWS does not serve. Each exits 2
// with one JSON line on stderr naming the variable to fix, and every line
// on stdout and stderr (the SDK's own warnings included) is one JSON object
// with each key once.
func TestStartupErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	home := t.TempDir() // no ~/.aws
	base := []string{"HOME=" + home, "HEALTH_ADDR=127.0.0.1:0",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials")}
	creds := []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true"}
	for _, tc := range []struct {
		name     string
		env      []string
		variable string
		say      []string // in the error
		stdout   string   // a warning of the SDK's own on stdout, as JSON
	}{
		{name: "no credentials at all", env: []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + fakeIMDS(t)},
			variable: "AWS_ACCESS_KEY_ID", say: []string{"no AWS credentials found", "AWS_SECRET_ACCESS_KEY", "task role"},
			stdout: "falling back to IMDSv1"},
		{name: "nothing answers at AWS_ENDPOINT_URL", env: append([]string{"AWS_ENDPOINT_URL=http://" + closedPort(t)}, creds...),
			variable: "AWS_ENDPOINT_URL", say: []string{"nothing answers at http://127.0.0.1:", "make up"}},
		{name: "a region AWS does not serve", env: append([]string{"AWS_REGION=us-east-9"}, creds...),
			variable: "AWS_REGION", say: []string{"sqs.us-east-9.amazonaws.com", "AWS_ENDPOINT_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := worker(t, append(base, tc.env...), "", "run")
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (the configuration is the cause)", r.code)
			}
			errs := strictLines(t, "stderr", r.stderr)
			out := strictLines(t, "stdout", r.stdout)
			if len(errs) != 1 || errs[0].Str("variable") != tc.variable || errs[0].Level() != "error" {
				t.Fatalf("stderr %q: want one error line naming %s", r.stderr, tc.variable)
			}
			for _, s := range tc.say {
				if !strings.Contains(errs[0].Str("error"), s) {
					t.Errorf("the error does not say %q: %s", s, errs[0].Str("error"))
				}
			}
			if tc.stdout != "" {
				found := false
				for _, l := range out {
					found = found || l.Str("component") == "aws-sdk" && l.Level() == "warn" && strings.Contains(l.Msg(), tc.stdout)
				}
				if !found {
					t.Errorf("no aws-sdk warning %q on stdout:\n%s", tc.stdout, r.stdout)
				}
			}
		})
	}
}

// TestSDKWarningsAreJSON runs a worker whose first ReceiveMessage answer is
// cut short (a connection lost mid-answer): the SDK's warning that it could
// not read the rest of the body arrives as a JSON line of the worker's
// logger (component aws-sdk), the worker retries and consumes, and every
// line it writes is one JSON object with each key once and its durations
// in *_ms.
func TestSDKWarningsAreJSON(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.NoSetup())
	aws1, err := devstack.StartAWS() // its own, to fault it alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(aws1.Stop)
	cfg := e.Config
	cfg.AWSEndpoint = aws1.URL
	api := awsconn.SQS(aws.Config{Region: cfg.Region, BaseEndpoint: aws.String(aws1.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}, cfg)
	if _, err := setup.Queues(t.Context(), api, cfg); err != nil {
		t.Fatal(err)
	}
	var receives atomic.Int32
	aws1.SetFault(func(api string) devstack.Fault {
		return devstack.Fault{Truncate: api == "SQS.ReceiveMessage" && receives.Add(1) == 1}
	})
	var env []string
	for _, kv := range e.Environ() {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") {
			env = append(env, kv)
		}
	}
	p, logs, stderr := startRun(t, append(env, "AWS_ENDPOINT_URL="+aws1.URL, "LOG_LEVEL=info"), "worker consuming")
	code, err := p.Stop(time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v\n%s", code, err, stderr)
	}
	strictLines(t, "stderr", stderr.String())
	lines := logs.Lines()
	for _, l := range logs.Malformed() {
		t.Errorf("stdout line is not one JSON object with each key once (%v): %s", l.Err, l.Raw)
	}
	logtest.CheckDurationKeys(t, lines)
	found := false
	for _, l := range lines {
		found = found || l.Str("component") == "aws-sdk" && l.Level() == "warn" && strings.Contains(l.Msg(), "failed to discard remaining HTTP response body")
	}
	if !found || receives.Load() < 2 {
		t.Errorf("%d receives; no aws-sdk warning about the cut answer in:\n%s", receives.Load(), rawLines(lines))
	}
}

func rawLines(lines []logtest.Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Raw + "\n")
	}
	return b.String()
}

// TestRunWithoutWeaviateIsNotReady is a deploy with a wrong Weaviate host:
// the worker runs and logs why, but `worker healthcheck` fails with the
// /readyz body naming weaviate, so ECS never counts the task healthy; it
// takes no message; SIGTERM still drains and exits 0.
func TestRunWithoutWeaviateIsNotReady(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t)
	e.Send(t, stacktest.Event(map[string]any{"event_id": "e1", "chat_id": e.ChatID("c"), "text": "hello", "sent_at": "2026-11-28T08:00:00Z"}))
	env := append(e.Environ(), "WEAVIATE_URL=http://"+closedPort(t), "WEAVIATE_GRPC_ADDR=off", "LOG_LEVEL=info")
	p, logs, stderr := startRun(t, env, "worker started")
	logs.Wait(t, time.Minute, "the warning that Weaviate is not reached", func(ls []logtest.Line) bool {
		for _, l := range ls {
			if l.Level() == "warn" && strings.Contains(l.Msg(), "WEAVIATE_URL") {
				return true
			}
		}
		return false
	})
	var addr string
	for _, l := range logs.Lines() {
		if l.Msg() == "worker started" {
			addr = l.Str("health_addr")
		}
	}
	hc := worker(t, append(env, "HEALTH_ADDR="+addr), "", "healthcheck")
	if hc.code != 1 || !strings.Contains(hc.stderr, "503") || !strings.Contains(hc.stderr, `"not_reached":["weaviate","input_queue"]`) {
		t.Errorf("healthcheck: exit %d, stderr %q; want 1 naming weaviate", hc.code, hc.stderr)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rz struct {
		Status   string `json:"status"`
		Weaviate struct {
			Reached bool   `json:"reached"`
			Waiting string `json:"waiting"`
		} `json:"weaviate"`
	}
	if err := json.Unmarshal(body, &rz); err != nil || resp.StatusCode != 503 || rz.Status != "not ready" || rz.Weaviate.Reached ||
		!strings.Contains(rz.Weaviate.Waiting, "connection refused") {
		t.Errorf("/readyz %d %s", resp.StatusCode, body)
	}
	if n := e.QueueDepth(t, e.InputURL); n != 1 {
		t.Errorf("input queue depth %d, want the event untouched", n)
	}
	code, err := p.Stop(time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v\n%s", code, err, stderr)
	}
	strictLines(t, "stderr", stderr.String())
	for _, l := range logs.Malformed() {
		t.Errorf("stdout line is not one JSON object with each key once (%v): %s", l.Err, l.Raw)
	}
	for _, l := range logs.Lines() {
		if l.Msg() == "worker stopped" && l.Fields["received"] != 0.0 {
			t.Errorf("the worker received messages without Weaviate: %s", l.Raw)
		}
	}
}
