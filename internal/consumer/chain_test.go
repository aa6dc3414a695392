package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/middleware"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// The consumer with the worker's middlewares (internal/app composes them
// the same way): holding a message through a dependency's outage, the
// breaker's pause, poison to the dead-letter queue, a panic.

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
	api := client(kumotest.URL())
	input := kumotest.Queue(t, api, true)
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
	c := newConsumer(t, api, input, consumer.Config{WaitTime: time.Second, Gate: g})
	ctx, cancel := context.WithCancel(context.Background())
	var held atomic.Int64
	hold := middleware.Hold(middleware.HoldConfig{Backoff: backoff.Policy{Base: 10 * time.Millisecond}, Stop: ctx, Held: &held})
	run := startWith(t, ctx, cancel, c, handler.Chain(handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, fmt.Sprintf("%s#%d", m.Body, m.ReceiveCount))
		if m.Body == "2" && failures < 3 {
			failures++
			if failures == 2 {
				g.set(false) // the breaker opens
			}
			return fmt.Errorf("store: %w", handler.Transient(errTest))
		}
		return nil
	}), hold, middleware.Pause(g, ctx)))
	// Held behind the closed gate: no retry runs (the receivers wait on it
	// too), until it opens.
	waitFor(t, 10*time.Second, "the held retry to wait for the gate", func() bool {
		return held.Load() == 2 && g.waiting() >= 1+2 // the held message and both receivers
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
	if st := c.Stats(); held.Load() != 3 || st.Failed != 0 || st.Released != 0 || st.Received != 3 {
		t.Errorf("stats %+v, %d held retries; want 3 received, 3 held retries, none failed or released", st, held.Load())
	}
	assertEmpty(t, api, input)
}

// A message held when the stop begins is released at once (another worker
// can take it), and the stop does not wait out its hold.
func TestShutdownReleasesHeldMessage(t *testing.T) {
	t.Parallel()
	api := client(kumotest.URL())
	input := kumotest.Queue(t, api, false)
	send(t, api, input, bodies("held-%d", 1), 1)
	c := newConsumer(t, api, input, consumer.Config{WaitTime: time.Second, ShutdownTimeout: 20 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	var held atomic.Int64
	hold := middleware.Hold(middleware.HoldConfig{Backoff: backoff.Policy{Base: time.Minute}, Stop: ctx, Held: &held})
	run := startWith(t, ctx, cancel, c, hold(handler.HandlerFunc(func(context.Context, *handler.Message) error {
		return handler.Transient(errTest)
	})))
	waitFor(t, 10*time.Second, "the message to be held", func() bool { return held.Load() == 1 })
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
	api := client(kumotest.URL())
	input := kumotest.Queue(t, api, false)
	send(t, api, input, bodies("bound-%d", 1), 1)
	c := newConsumer(t, api, input, consumer.Config{WaitTime: time.Second, RetryBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	var held atomic.Int64
	hold := middleware.Hold(middleware.HoldConfig{For: 300 * time.Millisecond, Backoff: backoff.Policy{Base: 50 * time.Millisecond}, Stop: ctx, Held: &held})
	run := startWith(t, ctx, cancel, c, hold(handler.HandlerFunc(func(context.Context, *handler.Message) error {
		return handler.Transient(errTest)
	})))
	waitFor(t, 10*time.Second, "the hold to end", func() bool { return c.Stats().Failed == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := c.Stats(); held.Load() < 1 || st.Received != 1 {
		t.Errorf("stats %+v; want held retries, then one failure", st)
	}
	if visible, inFlight := depth(t, api, input); visible != 0 || inFlight != 1 {
		t.Errorf("%d visible, %d in flight; want the message backing off", visible, inFlight)
	}
}

// countingObserver counts the middlewares' events.
type countingObserver struct{ received, rejected, failed atomic.Int64 }

func (o *countingObserver) MessageReceived(time.Duration) { o.received.Add(1) }
func (o *countingObserver) MessageRejected()              { o.rejected.Add(1) }
func (o *countingObserver) MessageFailed()                { o.failed.Add(1) }

// A panic is that message's failure, not the worker's end.
func TestPanicIsFailure(t *testing.T) {
	t.Parallel()
	api := client(kumotest.URL())
	input := kumotest.Queue(t, api, false)
	send(t, api, input, bodies("panic-%d", 1), 1)
	c := newConsumer(t, api, input, consumer.Config{WaitTime: time.Second, RetryBackoff: time.Second})
	run := start(t, c, middleware.Recover()(handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		if m.ReceiveCount == 1 {
			panic("boom")
		}
		return nil
	})))
	waitFor(t, 10*time.Second, "the retry", func() bool { return c.Stats().Deleted == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := c.Stats(); st.Failed != 1 || st.Finished != 1 {
		t.Errorf("stats %+v; want 1 failed, 1 finished", st)
	}
}

// decodeHandler is the pipeline's first step: an event that does not decode
// is poison.
func decodeHandler(onValid func(event.Event)) handler.Handler {
	return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		ev, err := event.Decode([]byte(m.Body))
		var inv *event.Invalid
		if errors.As(err, &inv) {
			return handler.Poison(inv.Code, fmt.Errorf("decode event: %w", err))
		}
		if err != nil {
			return err
		}
		onValid(ev)
		return nil
	})
}

// poisonCase is one body and the error code it must reach the dead-letter
// queue with ("" for a valid event). marker is a substring of the body as
// received, to recognise it.
type poisonCase struct {
	name, body, marker, code string
}

func poisonCases() []poisonCase {
	valid := func(id string) string {
		return fmt.Sprintf(`{"event_id":%q,"chat_id":"c-1","text":"hello","sent_at":"2026-11-28T10:00:00Z"}`, id)
	}
	return []poisonCase{
		{"not JSON", "this is not JSON: m-notjson", "m-notjson", event.CodeNotJSON},
		{"truncated JSON", `{"event_id":"m-trunc","chat_id":`, "m-trunc", event.CodeNotJSON},
		{"JSON array", `["m-array"]`, "m-array", event.CodeNotJSON},
		{"missing event_id", `{"chat_id":"m-noid","text":"hi","sent_at":"2026-11-28T10:00:00Z"}`, "m-noid", event.CodeMissingField},
		{"missing text", `{"event_id":"m-notext","chat_id":"c","sent_at":"2026-11-28T10:00:00Z"}`, "m-notext", event.CodeMissingField},
		{"bad type", `{"event_id":"m-badtype","chat_id":42,"text":"hi","sent_at":"2026-11-28T10:00:00Z"}`, "m-badtype", event.CodeInvalidField},
		{"bad time", `{"event_id":"m-badtime","chat_id":"c","text":"hi","sent_at":"yesterday"}`, "m-badtime", event.CodeInvalidField},
		// SQS carries text only: invalid UTF-8 arrives as U+FFFD (the JSON
		// wire replaces it; real SQS refuses such a send), which no id allows.
		{"invalid UTF-8", "{\"event_id\":\"m-utf8\xff\xfe\",\"chat_id\":\"c\",\"text\":\"hi\",\"sent_at\":\"2026-11-28T10:00:00Z\"}", "m-utf8", event.CodeInvalidField},
		{"oversize text", fmt.Sprintf(`{"event_id":"m-big","chat_id":"c","text":%q,"sent_at":"2026-11-28T10:00:00Z"}`, strings.Repeat("x", event.MaxTextBytes+1)), "m-big", event.CodeTextTooLong},
		{"valid 1", valid("m-valid-1"), "m-valid-1", ""},
		{"valid 2", valid("m-valid-2"), "m-valid-2", ""},
	}
}

// Invalid events all end in the dead-letter queue, body untouched, with
// their reason; then they are deleted from the input queue, and the worker
// goes on with the valid ones.
func TestPoisonToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%t", fifo), func(t *testing.T) {
			t.Parallel()
			// The invalid UTF-8 body comes back from kumo with another MD5.
			api := client(kumotest.URL(), func(o *sqs.Options) { o.DisableMessageChecksumValidation = true })
			input, dlqURL := kumotest.Queue(t, api, fifo), kumotest.Queue(t, api, fifo)
			cases := poisonCases()
			msgs := make([]msg, len(cases))
			for i, c := range cases {
				msgs[i] = msg{body: c.body}
				if fifo {
					msgs[i].group, msgs[i].dedup = fmt.Sprintf("chat-%d", i), fmt.Sprintf("d-%d", i)
				}
			}
			send(t, api, input, msgs, 1)

			var (
				mu    sync.Mutex
				valid []string
				seen  = map[string]*handler.Message{} // marker → message as received
			)
			obs := &countingObserver{}
			c := newConsumer(t, api, input, consumer.Config{})
			deadLetter := middleware.DeadLetter(dlq.New(sqsbatch.NewSender(api, dlqURL, sqsbatch.Config{}), fifo), obs)
			inner := decodeHandler(func(ev event.Event) {
				mu.Lock()
				valid = append(valid, ev.EventID)
				mu.Unlock()
			})
			run := start(t, c, deadLetter(handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
				mu.Lock()
				for _, pc := range cases {
					if strings.Contains(m.Body, pc.marker) {
						cp := *m
						seen[pc.marker] = &cp
					}
				}
				mu.Unlock()
				return inner.Handle(ctx, m)
			})))
			waitFor(t, 15*time.Second, "every event to be handled", func() bool { return c.Stats().Deleted == int64(len(cases)) })
			if _, err := run.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			dead := receiveAll(t, api, dlqURL)
			byMarker := map[string]types.Message{}
			for _, d := range dead {
				for _, pc := range cases {
					if strings.Contains(aws.ToString(d.Body), pc.marker) {
						byMarker[pc.marker] = d
					}
				}
			}
			invalid := 0
			for _, pc := range cases {
				d, inDLQ := byMarker[pc.marker]
				if pc.code == "" {
					if inDLQ {
						t.Errorf("%s: valid event in the dead-letter queue", pc.name)
					}
					continue
				}
				invalid++
				if !inDLQ {
					t.Errorf("%s: not in the dead-letter queue", pc.name)
					continue
				}
				got := seen[pc.marker]
				if aws.ToString(d.Body) != got.Body {
					t.Errorf("%s: dead-letter body differs from the body received", pc.name)
				}
				if code := attr(d, "error_code"); code != pc.code {
					t.Errorf("%s: error_code %q, want %q", pc.name, code, pc.code)
				}
				if reason := attr(d, "error"); reason == "" || len(reason) > dlq.MaxErrorAttrLen {
					t.Errorf("%s: error attribute %q", pc.name, reason)
				}
				if fifo {
					sys := d.Attributes
					if g := sys[string(types.MessageSystemAttributeNameMessageGroupId)]; g != got.GroupID {
						t.Errorf("%s: dead-letter group %q, want %q", pc.name, g, got.GroupID)
					}
					if dd := sys[string(types.MessageSystemAttributeNameMessageDeduplicationId)]; dd != got.ID {
						t.Errorf("%s: dead-letter deduplication id %q, want the message id %q", pc.name, dd, got.ID)
					}
				}
				t.Logf("%-16s → %s: %.80s", pc.name, attr(d, "error_code"), attr(d, "error"))
			}
			if len(dead) != invalid {
				t.Errorf("%d messages in the dead-letter queue, want %d", len(dead), invalid)
			}
			mu.Lock()
			if len(valid) != len(cases)-invalid {
				t.Errorf("valid events handled: %v", valid)
			}
			mu.Unlock()
			if st := c.Stats(); obs.rejected.Load() != int64(invalid) || st.Failed != 0 {
				t.Errorf("stats %+v, observer rejected %d; want %d rejected", st, obs.rejected.Load(), invalid)
			}
			assertEmpty(t, api, input)
		})
	}
}

func attr(m types.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

// orderAPI wraps the real client: it fails the first dead-letter send and
// records, per message body, the order of dead-letter sends and deletes.
type orderAPI struct {
	*sqs.Client
	mu      sync.Mutex
	bodies  map[string]string // receipt handle → body
	log     []string
	sendErr error
}

func (o *orderAPI) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := o.Client.ReceiveMessage(ctx, in, opts...)
	if err == nil {
		o.mu.Lock()
		for _, m := range out.Messages {
			o.bodies[aws.ToString(m.ReceiptHandle)] = aws.ToString(m.Body)
		}
		o.mu.Unlock()
	}
	return out, err
}

func (o *orderAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	o.mu.Lock()
	err := o.sendErr
	o.sendErr = nil
	o.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out, err := o.Client.SendMessageBatch(ctx, in, opts...)
	if err == nil {
		o.mu.Lock()
		for _, e := range in.Entries {
			o.log = append(o.log, "dead-letter "+aws.ToString(e.MessageBody))
		}
		o.mu.Unlock()
	}
	return out, err
}

func (o *orderAPI) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out, err := o.Client.DeleteMessageBatch(ctx, in, opts...)
	if err == nil {
		o.mu.Lock()
		for _, e := range in.Entries {
			o.log = append(o.log, "delete "+o.bodies[aws.ToString(e.ReceiptHandle)])
		}
		o.mu.Unlock()
	}
	return out, err
}

// A poison message is deleted only after the dead-letter queue has it: if
// the send fails, the message stays in the input queue and comes back.
func TestPoisonNeverLost(t *testing.T) {
	t.Parallel()
	api := client(kumotest.URL())
	input, dlqURL := kumotest.Queue(t, api, false), kumotest.Queue(t, api, false)
	send(t, api, input, []msg{{body: "not json"}}, 1)
	rec := &orderAPI{Client: api, bodies: map[string]string{},
		sendErr: &smithy.GenericAPIError{Code: "KmsAccessDenied", Fault: smithy.FaultClient}}
	c := newConsumer(t, rec, input, consumer.Config{WaitTime: time.Second, RetryBackoff: time.Second})
	obs := &countingObserver{}
	deadLetter := middleware.DeadLetter(dlq.New(sqsbatch.NewSender(rec, dlqURL, sqsbatch.Config{}), false), obs)
	run := start(t, c, deadLetter(decodeHandler(func(event.Event) {})))
	waitFor(t, 10*time.Second, "the retry to reach the dead-letter queue", func() bool { return c.Stats().Deleted == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := strings.Join(rec.log, ", "); got != "dead-letter not json, delete not json" {
		t.Errorf("calls: %s; want the send before the delete", got)
	}
	if st := c.Stats(); st.Failed != 1 || obs.rejected.Load() != 1 {
		t.Errorf("stats %+v, %d rejected; want the failed send counted, then 1 rejected", st, obs.rejected.Load())
	}
	if dead := receiveAll(t, api, dlqURL); len(dead) != 1 {
		t.Errorf("%d in the dead-letter queue, want 1", len(dead))
	}
	assertEmpty(t, api, input)
}

// throttledSends fails the first fails SendMessageBatch calls as a
// throttled SQS does.
type throttledSends struct {
	*orderAPI
	fails atomic.Int64
}

func (s *throttledSends) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if s.fails.Add(-1) >= 0 {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down", Fault: smithy.FaultClient}
	}
	return s.orderAPI.SendMessageBatch(ctx, in, opts...)
}

// A dead-letter move that fails for the dead-letter queue's sake
// (throttled) is held in place like any dependency's failure, in the
// worker's order of middlewares (Hold outside DeadLetter): the poison
// message is received once, costs no receive towards MAX_RECEIVE_COUNT,
// and is moved once the queue takes it, then deleted.
func TestDeadLetterMoveHeldInPlace(t *testing.T) {
	t.Parallel()
	api := client(kumotest.URL())
	input, dlqURL := kumotest.Queue(t, api, false), kumotest.Queue(t, api, false)
	send(t, api, input, []msg{{body: "not json"}}, 1)
	rec := &throttledSends{orderAPI: &orderAPI{Client: api, bodies: map[string]string{}}}
	rec.fails.Store(3)
	c := newConsumer(t, rec, input, consumer.Config{WaitTime: time.Second, RetryBackoff: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	var held atomic.Int64
	obs := &countingObserver{}
	run := startWith(t, ctx, cancel, c, handler.Chain(decodeHandler(func(event.Event) {}),
		middleware.Hold(middleware.HoldConfig{Backoff: backoff.Policy{Base: 10 * time.Millisecond}, Stop: ctx, Held: &held}),
		middleware.DeadLetter(dlq.New(sqsbatch.NewSender(rec, dlqURL, sqsbatch.Config{MaxAttempts: 1}), false), obs),
	))
	waitFor(t, 10*time.Second, "the move and the delete", func() bool { return c.Stats().Deleted == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := c.Stats(); st.Received != 1 || st.Failed != 0 || held.Load() != 3 || obs.rejected.Load() != 1 {
		t.Errorf("stats %+v, %d held retries, %d rejected; want received once, 3 held retries, none failed, 1 rejected", st, held.Load(), obs.rejected.Load())
	}
	if dead := receiveAll(t, api, dlqURL); len(dead) != 1 {
		t.Errorf("%d in the dead-letter queue, want 1", len(dead))
	}
	assertEmpty(t, api, input)
}
