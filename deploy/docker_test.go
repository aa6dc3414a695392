package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/setup"
)

func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	r, err := devstack.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type composeFile struct {
	WorkerEnv map[string]string `yaml:"x-worker-env"`
	Services  map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		ReadOnly    bool              `yaml:"read_only"`
		DependsOn   map[string]any    `yaml:"depends_on"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

// readCompose reads docker-compose.yml, which must be valid YAML.
func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// TestComposeFile checks docker-compose.yml without a Docker engine: it is
// valid YAML, the worker gets every variable of the contract (and nothing
// else) with the contract's defaults where the stack does not need another
// value, images are pinned, and Weaviate is the version the devstack runs.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	for _, name := range []string{"localstack", "weaviate", "setup", "worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	var want []string
	defaults := map[string]string{}
	for _, v := range config.Env() {
		want = append(want, v[0])
		defaults[v[0]] = v[1]
	}
	extra := map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}
	var got []string
	for k := range c.WorkerEnv {
		if !extra[k] {
			got = append(got, k)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("x-worker-env names:\n got %v\nwant %v", got, want)
	}
	differs := map[string]bool{"AWS_ENDPOINT_URL": true, "WEAVIATE_URL": true, "WEAVIATE_GRPC_ADDR": true}
	for k, v := range c.WorkerEnv {
		if extra[k] || differs[k] {
			continue
		}
		if v != defaults[k] {
			t.Errorf("%s = %q in compose, contract default %q", k, v, defaults[k])
		}
	}
	built := map[string]bool{} // images the compose file builds itself
	for _, s := range c.Services {
		if s.Build != nil {
			built[s.Image] = true
		}
	}
	for name, s := range c.Services {
		if s.Image != "" && !built[s.Image] && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("service %s: image %q is not pinned", name, s.Image)
		}
		if (name == "worker" || name == "setup") && !s.ReadOnly {
			t.Errorf("service %s: root file system not read-only", name)
		}
	}
	if img := c.Services["weaviate"].Image; !strings.HasSuffix(img, ":"+strings.TrimPrefix(devstack.WeaviateVersion, "v")) {
		t.Errorf("weaviate image %q, want version %s (the one the devstack runs)", img, devstack.WeaviateVersion)
	}
	if cmd := c.Services["worker"].Command; !slices.Equal(cmd, []string{"run"}) {
		t.Errorf("worker command %v", cmd)
	}
}

// TestDockerfile checks the image recipe: multi-stage, a static binary, a
// non-root user, the worker as entry point with a health check.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms int
	var user, entry, health string
	var static bool
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms++
			user = "" // USER applies per stage
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = strings.Join(f[1:], " ")
		case "HEALTHCHECK":
			health = line
		case "RUN":
			if strings.Contains(line, "CGO_ENABLED=0") && strings.Contains(line, "go build") {
				static = true
			}
		}
	}
	if froms < 2 {
		t.Errorf("%d stages, want a multi-stage build", froms)
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("final stage runs as %q, want a non-root user", user)
	}
	if !static {
		t.Error("no CGO_ENABLED=0 go build: the binary would not be static")
	}
	if entry != `["/worker"]` {
		t.Errorf("ENTRYPOINT %s", entry)
	}
	if !strings.Contains(health, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK %q does not use worker healthcheck", health)
	}
}

// TestLocalStackHookCreatesWhatSetupWants runs the ready hook with a
// stand-in for awslocal that records the calls, and checks each queue gets
// exactly the attributes `worker setup` would give it (so setup later finds
// them unchanged).
func TestLocalStackHookCreatesWhatSetupWants(t *testing.T) {
	t.Parallel()
	hook := filepath.Join(root(t), "localstack", "ready.d", "01-chatprep-queues.sh")
	if out, err := exec.Command("bash", "-n", hook).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	fake := `#!/bin/bash
if [ "$2" = create-queue ]; then printf '%s\t%s\n' "$4" "$6" >> ` + log + `; echo "http://localhost:4566/000000000000/$4"
else echo "arn:aws:sqs:us-east-1:000000000000:chat-events-dlq.fifo"; fi
`
	if err := os.WriteFile(filepath.Join(dir, "awslocal"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", hook)
	cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hook: %v\n%s", err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	const arn = "arn:aws:sqs:us-east-1:000000000000:chat-events-dlq.fifo"
	want := map[string]map[string]string{
		cfg.DLQQueue:      setup.DLQAttributes(cfg),
		cfg.InputQueue:    setup.InputAttributes(cfg, arn),
		cfg.ResponseQueue: setup.ResponseAttributes(cfg),
	}
	got := map[string]map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, attrs, _ := strings.Cut(line, "\t")
		m := map[string]string{}
		if err := json.Unmarshal([]byte(attrs), &m); err != nil {
			t.Fatalf("queue %s: attributes are not JSON: %v: %s", name, err, attrs)
		}
		got[name] = m
	}
	for name, w := range want {
		g := got[name]
		if g == nil {
			t.Errorf("hook does not create %s", name)
			continue
		}
		if rp, ok := g["RedrivePolicy"]; ok {
			g["RedrivePolicy"] = normalizeJSON(t, rp)
			w["RedrivePolicy"] = normalizeJSON(t, w["RedrivePolicy"])
		}
		if !maps.Equal(g, w) {
			t.Errorf("queue %s:\n hook  %v\n setup %v", name, g, w)
		}
	}
}

func normalizeJSON(t *testing.T, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return fmt.Sprint(string(b))
}

// LocalStack versions that matter to the worker (LOCAL-STACK.md): CloudWatch
// reads the SDK's CBOR calls with float timestamps from 4.13.0 on
// (localstack#13541, December 2025; 4.12 and older drop every PutMetricData),
// and tags after 4.14.0 need LOCALSTACK_AUTH_TOKEN.
var (
	localStackReadsCBOR = [3]int{4, 13, 0}
	localStackLastFree  = [3]int{4, 14, 0}
)

var localStackImageRE = regexp.MustCompile(`^localstack/localstack:(\d+)\.(\d+)\.(\d+)(@sha256:[0-9a-f]{64})?$`)

// checkLocalStack says what is wrong with a LocalStack service of image and
// environment env for the worker, or nil: a version that reads the SDK's
// CBOR CloudWatch calls, pinned to a full version, and past the last free
// tag only with LOCALSTACK_AUTH_TOKEN from the caller's environment.
func checkLocalStack(image string, env map[string]string) error {
	m := localStackImageRE.FindStringSubmatch(image)
	if m == nil {
		return fmt.Errorf("image %q: want localstack/localstack:X.Y.Z (a full version, optionally @sha256:…)", image)
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	if slices.Compare(v[:], localStackReadsCBOR[:]) < 0 {
		return fmt.Errorf("image %q: LocalStack before %d.%d.%d cannot read the SDK's CBOR CloudWatch calls (every metric is lost)",
			image, localStackReadsCBOR[0], localStackReadsCBOR[1], localStackReadsCBOR[2])
	}
	if slices.Compare(v[:], localStackLastFree[:]) > 0 && !strings.HasPrefix(env["LOCALSTACK_AUTH_TOKEN"], "${LOCALSTACK_AUTH_TOKEN") {
		return fmt.Errorf("image %q: tags after %d.%d.%d need LOCALSTACK_AUTH_TOKEN: ${LOCALSTACK_AUTH_TOKEN} in the service's environment",
			image, localStackLastFree[0], localStackLastFree[1], localStackLastFree[2])
	}
	return nil
}

func TestCheckLocalStack(t *testing.T) {
	t.Parallel()
	token := map[string]string{"LOCALSTACK_AUTH_TOKEN": "${LOCALSTACK_AUTH_TOKEN:?set it}"}
	for _, tc := range []struct {
		image string
		env   map[string]string
		ok    bool
	}{
		{"localstack/localstack:4.4", nil, false},
		{"localstack/localstack:4.4.0", nil, false},
		{"localstack/localstack:4.12.0", nil, false},
		{"localstack/localstack:4.13.0", nil, true},
		{"localstack/localstack:4.14.0@sha256:3ebc37595918b8accb852f8048fef2aff047d465167edd655528065b07bc364a", nil, true},
		{"localstack/localstack:4.14.1", nil, false},
		{"localstack/localstack:2026.03.0", nil, false},
		{"localstack/localstack:2026.03.0", map[string]string{"LOCALSTACK_AUTH_TOKEN": "ls-hardcoded"}, false},
		{"localstack/localstack:2026.03.0", token, true},
		{"localstack/localstack:latest", token, false},
	} {
		if err := checkLocalStack(tc.image, tc.env); (err == nil) != tc.ok {
			t.Errorf("%s %v: %v, want ok %v", tc.image, tc.env, err, tc.ok)
		}
	}
}

// TestComposeLocalStackReadsCBOR checks the compose file's LocalStack, and
// the newer one the README's override file gives, against checkLocalStack.
func TestComposeLocalStackReadsCBOR(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	ls := c.Services["localstack"]
	if err := checkLocalStack(ls.Image, ls.Environment); err != nil {
		t.Error(err)
	}
	if !strings.Contains(ls.Image, "@sha256:") {
		t.Errorf("image %q is not pinned by digest", ls.Image)
	}
	if c.WorkerEnv["METRICS_TIMESTAMPS"] != "true" {
		t.Errorf("METRICS_TIMESTAMPS = %q: LocalStack accepts timestamps, keep them on", c.WorkerEnv["METRICS_TIMESTAMPS"])
	}

	readme, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n# docker-compose.override.yml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```yaml block starting with # docker-compose.override.yml (a newer LocalStack with a token)")
	}
	var override composeFile
	if err := yaml.Unmarshal(m[1], &override); err != nil {
		t.Fatalf("the README's override file: %v", err)
	}
	o := override.Services["localstack"]
	env := maps.Clone(ls.Environment)
	maps.Copy(env, o.Environment)
	if err := checkLocalStack(o.Image, env); err != nil {
		t.Errorf("the README's override file: %v", err)
	}
	if checkLocalStack(o.Image, nil) == nil {
		t.Errorf("the README's override file runs %s, which needs no token: show a tag after the last free one", o.Image)
	}
}
