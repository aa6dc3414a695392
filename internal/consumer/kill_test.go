package consumer_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/handler"
)

// The child worker of TestKilledWorker is this test binary run again with
// these variables set; TestMain runs childMain instead of the tests.
const (
	childEnv      = "CONSUMER_TEST_CHILD" // the emulator's endpoint
	childQueueEnv = "CONSUMER_TEST_CHILD_QUEUE"
	childOutEnv   = "CONSUMER_TEST_CHILD_OUT" // file of handled bodies, one a line
	childVT       = 2 * time.Second
)

// childMain is a worker: it consumes the queue and appends each message's
// body to the output file before the handler returns (so before the
// message is deleted). It runs until killed, or ends itself after a minute.
func childMain() int {
	out, err := os.OpenFile(os.Getenv(childOutEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer out.Close()
	c, err := consumer.New(client(os.Getenv(childEnv)), consumer.Config{
		QueueURL:    os.Getenv(childQueueEnv),
		MaxInFlight: 10, VisibilityTimeout: childVT, WaitTime: time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	err = c.Run(ctx, handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		time.Sleep(20*time.Millisecond + rand.N(20*time.Millisecond)) // the work
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintln(out, m.Body) // one write(2): in the kernel before the delete
		return err
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// A worker killed with SIGKILL mid-load: after the visibility timeout a
// second worker finishes everything; nothing is lost.
func TestKilledWorker(t *testing.T) {
	t.Parallel()
	const n = 500
	api := client(kumotest.URL())
	input := kumotest.Queue(t, api, false)
	send(t, api, input, bodies("k%03d", n), 4)

	outFile := filepath.Join(t.TempDir(), "handled")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+kumotest.URL(), childQueueEnv+"="+input, childOutEnv+"="+outFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill() //nolint:errcheck // by pid, the child this test started
			cmd.Wait()         //nolint:errcheck
		}
	})
	handledByChild := func() map[string]bool {
		f, err := os.Open(outFile)
		if err != nil {
			return map[string]bool{}
		}
		defer f.Close()
		seen := map[string]bool{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := sc.Text(); len(line) == 4 { // a line cut by the kill is shorter
				seen[line] = true
			}
		}
		return seen
	}
	waitFor(t, 30*time.Second, "the child to handle some messages", func() bool { return len(handledByChild()) >= 40 })
	if err := cmd.Process.Kill(); err != nil { // SIGKILL, by pid
		t.Fatalf("kill child: %v", err)
	}
	killed = true
	cmd.Wait() //nolint:errcheck // killed: "signal: killed"
	killedAt := time.Now()
	byChild := handledByChild()
	if len(byChild) >= n {
		t.Fatalf("the child finished everything before the kill; make its work slower")
	}

	var (
		mu       sync.Mutex
		bySecond = map[string]bool{}
		lastAt   time.Time
	)
	second := newConsumer(t, api, input, consumer.Config{VisibilityTimeout: childVT, WaitTime: time.Second})
	run := start(t, second, handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		mu.Lock()
		defer mu.Unlock()
		bySecond[m.Body] = true
		lastAt = time.Now()
		return nil
	}))
	all := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			b := fmt.Sprintf("k%03d", i)
			if !byChild[b] && !bySecond[b] {
				return false
			}
		}
		return true
	}
	waitFor(t, 30*time.Second, "every message to be handled by one of the workers", all)
	waitFor(t, 10*time.Second, "the queue to be empty", func() bool {
		v, f := depth(t, api, input)
		return v+f == 0
	})
	if _, err := run.stop(); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var both []string
	for b := range byChild {
		if bySecond[b] {
			both = append(both, b)
		}
	}
	t.Logf("child handled %d before SIGKILL, second worker %d (last %s after the kill); %d handled by both (in flight at the kill): %s",
		len(byChild), len(bySecond), lastAt.Sub(killedAt).Round(time.Millisecond), len(both), strings.Join(both[:min(len(both), 10)], " "))
}
