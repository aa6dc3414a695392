package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// The Weaviate server that requires an API key, shared by the tests of
// this file and stopped by TestMain.
var (
	keyedMu  sync.Mutex
	keyed    *devstack.Weaviate
	apiKey   = "chaos-" + randomHex(12)
	wrongKey = "wrong-" + randomHex(12)
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// keyedWeaviate starts (once) a Weaviate server that accepts only apiKey.
func keyedWeaviate(t *testing.T) *devstack.Weaviate {
	t.Helper()
	keyedMu.Lock()
	defer keyedMu.Unlock()
	if keyed != nil {
		return keyed
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	var err error
	keyed, err = weaviatetest.StartContext(ctx, devstack.WeaviateOptions{APIKey: apiKey}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return keyed
}

func stopKeyedWeaviate() {
	keyedMu.Lock()
	defer keyedMu.Unlock()
	if keyed != nil {
		if err := keyed.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the keyed Weaviate:", err)
		}
	}
}

// runWorker runs a worker command to its end and returns its exit code and
// combined output.
func runWorker(t *testing.T, environ []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBin, args...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("worker %v: %v", args, err)
	}
	return 0, string(out)
}

// readyz is a worker's /readyz answer: its status code and body.
func readyz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// keyedEnv points a worker at w with key.
func keyedEnv(env *stacktest.Env, w *devstack.Weaviate, key string) []string {
	return append(env.Environ(), "WEAVIATE_URL="+w.URL, "WEAVIATE_GRPC_ADDR="+w.GRPCAddr, "WEAVIATE_API_KEY="+key)
}

// TestWeaviateAPIKey: against a Weaviate that requires a key, `worker setup`
// and `worker run` work with WEAVIATE_API_KEY right; with it wrong, setup
// fails and the worker says the key was refused (never the key), is never
// ready (/readyz 503 naming weaviate, so ECS would replace it) and takes no
// event while it runs: once a worker with the right key replaces it, every
// event is accounted for.
func TestWeaviateAPIKey(t *testing.T) {
	parallel(t)
	w := keyedWeaviate(t)
	// A low MAX_RECEIVE_COUNT: a worker that kept receiving and failing the
	// events would have them redriven to the dead-letter queue (lost)
	// within seconds.
	env := stacktest.New(t, stacktest.With("MAX_RECEIVE_COUNT", "2"))

	code, out := runWorker(t, keyedEnv(env, w, wrongKey), "setup")
	if code == 0 || !strings.Contains(out, "WEAVIATE_API_KEY") {
		t.Errorf("setup with a wrong key: exit %d, output should name WEAVIATE_API_KEY:\n%s", code, out)
	}
	if leaks := find(out, []string{apiKey, wrongKey}); len(leaks) > 0 {
		t.Errorf("setup output holds the key:\n%s", out)
	}
	if code, out := runWorker(t, keyedEnv(env, w, apiKey), "setup"); code != 0 || strings.Contains(out, apiKey) {
		t.Fatalf("setup with the right key: exit %d:\n%s", code, out)
	}

	const window = 12 * time.Second
	sc := scenario{name: "wrong API key, then right", workers: 0, chats: 4, perChat: 8, poisonEvery: 10, rate: 40,
		weaviate: w, apiKey: apiKey}
	var wrong *worker
	sc.fault = func(ctx context.Context, r *run) string {
		wrong = r.fleet.startUnready("WEAVIATE_API_KEY=" + wrongKey)
		r.waitSent(ctx, 1)
		hold(ctx, window) // a misconfigured worker running for a while
		if code, body := readyz(wrong.health); code != http.StatusServiceUnavailable || !strings.Contains(body, `"not_reached":["weaviate"`) {
			r.t.Errorf("the wrong-key worker's /readyz: %d %s; want 503 naming weaviate", code, body)
		}
		v, err := debugVars(wrong.health)
		if c, _ := v["consumer"].(map[string]any); err != nil || c["Received"] != 0.0 {
			r.t.Errorf("the wrong-key worker received messages: %v %v", v["consumer"], err)
		}
		if err := r.fleet.stop(wrong, stopGrace()); err != nil {
			r.t.Errorf("the wrong-key worker: %v", err)
		}
		r.fleet.start()
		return fmt.Sprintf("a worker with a wrong key ran %v, then one with the right key", window)
	}
	sc.felt = func(r *run, _ *tally) string {
		logs := string(wrong.log.contents())
		if !strings.Contains(logs, "refused the API key") || !strings.Contains(logs, "WEAVIATE_API_KEY") {
			return "the wrong-key worker did not say that Weaviate refused its key (WEAVIATE_API_KEY)"
		}
		if strings.Contains(logs, wrongKey) {
			return "" // reported as a leak by the accounting
		}
		return ""
	}
	tl := runScenario(t, sc)
	t.Logf("%s: %d/%d results, %d lost, %d duplicates, %d/%d dead letters; %s",
		sc.name, tl.results, tl.users, tl.lost, tl.dups, tl.dlq, tl.poison, tl.note)
	if leaks := find(string(wrong.log.contents()), []string{wrongKey, apiKey}); len(leaks) > 0 {
		t.Error("the wrong-key worker logged a key")
	}
}

// TestSampleRunIsClean runs one worker over samples/events.jsonl as an
// operator would on the container's terms, and checks:
//   - no sample text (nor any 24-byte piece of one) and no API key appear
//     in anything the worker, `worker setup` or `worker enqueue` wrote, at
//     LOG_LEVEL=info with WEAVIATE_API_KEY set;
//   - with HEALTH_ADDR unset, the only socket the worker listens on is the
//     health endpoint on 127.0.0.1:8081 (loopback, the contract's default);
//   - it runs as the image's non-root user (65532) with no home and no
//     writable directory of its own, and writes no file: it would run the
//     same on a read-only root file system. (The image, compose file and
//     task definition are checked for USER and read-only root in
//     deploy/docker_test.go and deploy/ecs/taskdef_test.go.)
func TestSampleRunIsClean(t *testing.T) {
	parallel(t)
	w := keyedWeaviate(t)
	env := stacktest.New(t)
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "LOG_LEVEL=info",
		"WEAVIATE_URL=" + w.URL, "WEAVIATE_GRPC_ADDR=" + w.GRPCAddr, "WEAVIATE_API_KEY=" + apiKey}
	for k, v := range env.Vars {
		if k != "HEALTH_ADDR" && k != "LOG_LEVEL" && !strings.HasPrefix(k, "WEAVIATE_") {
			environ = append(environ, k+"="+v)
		}
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(cfg.HealthAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Fatalf("HEALTH_ADDR defaults to %q, not a loopback address", cfg.HealthAddr)
	}

	var output bytes.Buffer // everything any command wrote
	code, out := runWorker(t, environ, "setup")
	output.WriteString(out)
	if code != 0 {
		t.Fatalf("setup: exit %d\n%s", code, out)
	}

	samplesPath, err := filepath.Abs("../samples/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := os.ReadFile(samplesPath)
	if err != nil {
		t.Fatal(err)
	}
	valid, users, invalid, texts := readSamples(samples)

	// The worker, as the container runs it: non-root, cwd /, no home.
	started := time.Now()
	f := newFleet(t, workerBin, []string{"run"}, environ)
	cmd := exec.Command(workerBin, "run")
	cmd.Env, cmd.Dir = environ, "/"
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	wk := f.startCmd(cmd)
	if uid := procUID(t, wk.proc.Pid()); uid == 0 {
		t.Errorf("the worker runs as root")
	}
	listening := listeningSockets(t, wk.proc.Pid())
	if len(listening) != 1 || listening[0] != "127.0.0.1:8081" || wk.health != "127.0.0.1:8081" {
		t.Errorf("the worker listens on %v (health endpoint %s), want only 127.0.0.1:8081", listening, wk.health)
	}
	if resp, err := http.Get("http://127.0.0.1:8081/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz on the default address: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	api := unfaultedSQS(env)
	coll := startCollector(api, env.ResponseURL, 1)
	t.Cleanup(coll.stop)
	code, out = runWorker(t, environ, "enqueue", samplesPath)
	output.WriteString(out)
	if want := fmt.Sprintf("sent %d, rejected %d", valid, len(invalid)); code != 1 || !strings.Contains(out, want) {
		t.Errorf("enqueue: exit %d, want 1 and %q:\n%s", code, want, out)
	}
	// What `worker enqueue` refuses, a producer that skips validation sends
	// anyway: the worker dead-letters it, and must not log its text either.
	for i, line := range invalid {
		if _, err := api.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(env.InputURL), MessageBody: aws.String(line),
			MessageGroupId: aws.String("raw"), MessageDeduplicationId: aws.String("raw-" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	if !waitFor(ctx, time.Minute, 200*time.Millisecond, func() bool {
		coll.mu.Lock()
		n := len(coll.results)
		coll.mu.Unlock()
		depth, err := stacktest.Depth(ctx, api, env.InputURL)
		return n >= users && err == nil && depth == 0
	}) {
		t.Errorf("results for %d of %d sample user messages", len(coll.results), users)
	}
	if err := f.stop(wk, stopGrace()); err != nil {
		t.Error(err)
	}
	output.Write(f.logs())

	if leaks := find(output.String(), append(texts.pieces, apiKey)); len(leaks) > 0 {
		t.Errorf("the output holds %d sample texts or the key, e.g. %q", len(leaks), first(leaks, 3))
	}
	if !bytes.Contains(output.Bytes(), []byte(`"message":"message preprocessed"`)) {
		t.Error("no info line per event: the check above saw nothing")
	}
	if files := filesOwnedBy(65532, started, "/tmp", "/var/tmp", "/dev/shm"); os.Geteuid() == 0 && len(files) > 0 {
		t.Errorf("the worker wrote files: %v", files)
	}
}

type sampleTexts struct {
	all    []string // every text of at least 8 bytes
	pieces []string // those, and every 24-byte piece of them starting at a word
}

// readSamples reads the samples: the number of valid events and of valid
// user messages, the lines event.Decode refuses, and the texts to look for
// in logs (of every line, valid or not).
func readSamples(b []byte) (valid, users int, invalid []string, texts sampleTexts) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		ev, err := event.Decode([]byte(line))
		switch {
		case err != nil:
			invalid = append(invalid, line)
		case ev.Type == event.TypeMessage && ev.Role == event.RoleUser:
			valid++
			users++
		default:
			valid++
		}
		var raw struct{ Text string }
		if json.Unmarshal([]byte(line), &raw) != nil || len(raw.Text) < 8 {
			continue
		}
		texts.all = append(texts.all, raw.Text)
		texts.pieces = append(texts.pieces, raw.Text)
		for i := 0; i+24 <= len(raw.Text); i++ {
			if i == 0 || raw.Text[i-1] == ' ' {
				texts.pieces = append(texts.pieces, raw.Text[i:i+24])
			}
		}
	}
	return valid, users, invalid, texts
}

// procUID is the real uid of a process.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

// listeningSockets are the TCP addresses a process listens on: its socket
// file descriptors matched by inode against /proc/net/tcp and tcp6.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes, _, err := socketInodes(pid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range tcpSockets(inodes, "0A") {
		out = append(out, hexAddr(t, f[1]))
	}
	return out
}

// socketInodes returns the inodes of a process's sockets and its number of
// open file descriptors.
func socketInodes(pid int) (map[string]bool, int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	return inodes, len(fds), nil
}

// tcpSockets returns the /proc/net/tcp{,6} rows (fields) of the sockets
// with these inodes in state st ("0A" listen, "01" established).
func tcpSockets(inodes map[string]bool, st string) [][]string {
	var out [][]string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue // no IPv6
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) >= 10 && f[3] == st && inodes[f[9]] {
				out = append(out, f)
			}
		}
	}
	return out
}

// hexAddr reads /proc/net/tcp's "0100007F:1F91" (or the 32-digit IPv6
// form) as "127.0.0.1:8081".
func hexAddr(t *testing.T, s string) string {
	t.Helper()
	h, p, _ := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is in host (little-endian) order
		for j := range 4 {
			ip[i+j] = raw[i+3-j]
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

// filesOwnedBy lists files under dirs owned by uid and changed since since.
func filesOwnedBy(uid int, since time.Time, dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable: not the worker's
			}
			info, err := e.Info()
			if err != nil {
				return nil
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && info.ModTime().After(since) {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}
