package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/consumer"
)

// switchGate is a Gate that can be closed and opened again; blocked
// counts the Waits blocked now.
type switchGate struct {
	mu      sync.Mutex
	open    chan struct{} // closed while the gate is open
	blocked int
}

func newSwitchGate() *switchGate {
	g := &switchGate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *switchGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	open := g.open
	g.blocked++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.blocked--
		g.mu.Unlock()
	}()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *switchGate) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		if !open {
			g.open = make(chan struct{})
		}
	default:
		if open {
			close(g.open)
		}
	}
}

func (g *switchGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked
}

// A transient failure (a dependency down) is retried in place: the message
// keeps its lease, its retries wait for the Gate, its FIFO group waits
// behind it, and nothing is received twice, so an outage never moves a
// valid event towards the dead-letter queue.
func TestTransientFailureHeldInPlace(t *testing.T) {
	t.Parallel()
	api := client(emu.URL)
	input, dlq := queues(t, api, true)
	send(t, api, input, []msg{
		{body: "1", group: "chat", dedup: "1"},
		{body: "2", group: "chat", dedup: "2"},
		{body: "3", group: "chat", dedup: "3"},
	}, 1)
	g := newSwitchGate()
	var (
		mu       sync.Mutex
		order    []string
		failures int
	)
	c := newConsumer(t, api, input, dlq, consumer.Config{
		WaitTime: time.Second, HoldBackoff: 10 * time.Millisecond, Gate: g,
	})
	run := start(t, c, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, fmt.Sprintf("%s#%d", m.Body, m.ReceiveCount))
		if m.Body == "2" && failures < 3 {
			failures++
			if failures == 2 {
				g.set(false) // the breaker opens
			}
			return fmt.Errorf("store: %w", consumer.Transient(errTest))
		}
		return nil
	}))
	// Held behind the closed gate: no retry runs (the receivers wait on it
	// too), until it opens.
	waitFor(t, 10*time.Second, "the held retry to wait for the gate", func() bool {
		return c.Stats().Held == 2 && g.waiting() >= 1+2 // the held message and both receivers
	})
	mu.Lock()
	if failures != 2 {
		t.Errorf("%d calls failed while the gate was closed, want 2", failures)
	}
	mu.Unlock()
	g.set(true)
	waitFor(t, 10*time.Second, "the group to finish", func() bool { return c.Stats().Deleted == 3 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(order, " "), "1#1 2#1 2#1 2#1 2#1 3#1"; got != want {
		t.Errorf("order %q, want %q (each received once)", got, want)
	}
	if st := c.Stats(); st.Held != 3 || st.Failed != 0 || st.Released != 0 || st.Received != 3 {
		t.Errorf("stats %+v; want 3 received, 3 held retries, none failed or released", st)
	}
	assertEmpty(t, api, input)
}

// A message held when the stop begins is released at once (another worker
// can take it), and the stop does not wait out its hold.
func TestShutdownReleasesHeldMessage(t *testing.T) {
	t.Parallel()
	api := client(emu.URL)
	input, dlq := queues(t, api, false)
	send(t, api, input, bodies("held-%d", 1), 1)
	c := newConsumer(t, api, input, dlq, consumer.Config{
		WaitTime: time.Second, ShutdownTimeout: 20 * time.Second, HoldBackoff: time.Hour,
	})
	run := start(t, c, consumer.HandlerFunc(func(context.Context, *consumer.Message) error {
		return consumer.Transient(errTest)
	}))
	waitFor(t, 10*time.Second, "the message to be held", func() bool { return c.Stats().Held == 1 })
	took, err := run.stop()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("stop took %s with a held message; want it released at once, not after the shutdown timeout", took)
	}
	if st := c.Stats(); st.Released != 1 || st.Failed != 1 {
		t.Errorf("stats %+v; want 1 failed and released", st)
	}
	// kumo counts a released message as in flight until the next receive,
	// which returns it: it is receivable at once.
	if got := len(receiveAll(t, api, input)); got != 1 {
		t.Errorf("%d messages receivable right after the stop, want the held one", got)
	}
}

// After HoldFor a transiently failing message is given back with the usual
// back-off, as any failure.
func TestHoldForBound(t *testing.T) {
	t.Parallel()
	api := client(emu.URL)
	input, dlq := queues(t, api, false)
	send(t, api, input, bodies("bound-%d", 1), 1)
	c := newConsumer(t, api, input, dlq, consumer.Config{
		WaitTime: time.Second, HoldFor: 300 * time.Millisecond, HoldBackoff: 50 * time.Millisecond,
		RetryBackoff: time.Hour,
	})
	run := start(t, c, consumer.HandlerFunc(func(context.Context, *consumer.Message) error {
		return consumer.Transient(errTest)
	}))
	waitFor(t, 10*time.Second, "the hold to end", func() bool { return c.Stats().Failed == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := c.Stats(); st.Held < 1 || st.Received != 1 {
		t.Errorf("stats %+v; want held retries, then one failure", st)
	}
	if visible, inFlight := depth(t, api, input); visible != 0 || inFlight != 1 {
		t.Errorf("%d visible, %d in flight; want the message backing off", visible, inFlight)
	}
}

// A message that a long poll returns after waiting longer than the
// visibility timeout has a whole lease: its timeout started when SQS
// answered, not when the poll was sent.
func TestLateLongPollKeepsLease(t *testing.T) {
	t.Parallel()
	api := client(emu.URL)
	input, dlq := queues(t, api, false)
	c := newConsumer(t, api, input, dlq, consumer.Config{
		Receivers: 1, VisibilityTimeout: 2 * time.Second, WaitTime: 10 * time.Second,
	})
	run := start(t, c, consumer.HandlerFunc(func(context.Context, *consumer.Message) error {
		time.Sleep(3 * time.Second) // the work: longer than one lease
		return nil
	}))
	waitFor(t, 5*time.Second, "the first long poll", func() bool { return c.Stats().Calls.ReceiveMessage == 1 })
	time.Sleep(3 * time.Second) // the poll waits past the visibility timeout
	if n := c.Stats().Calls.ReceiveMessage; n != 1 {
		t.Fatalf("%d polls; want the first one still waiting", n)
	}
	send(t, api, input, bodies("late-%d", 1), 1)
	waitFor(t, 15*time.Second, "the message to finish", func() bool { return c.Stats().Deleted == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := c.Stats(); st.LeasesLost != 0 || st.Extended == 0 {
		t.Errorf("stats %+v; want the lease extended, none lost", st)
	}
}
