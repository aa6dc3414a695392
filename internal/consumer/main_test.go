package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/handler"
)

// The test binary runs kumo once (kumotest.Main); every test makes its own
// queues. Its clients share transport, closed when the tests end.
var transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	kumotest.Main(m, transport.CloseIdleConnections)
}

// client is an SQS client of the emulator at endpoint.
func client(endpoint string, opts ...func(*sqs.Options)) *sqs.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}
	return sqs.NewFromConfig(cfg, append([]func(*sqs.Options){func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, opts...)...)
}

// msg is a message to enqueue.
type msg struct {
	body, group, dedup string
}

// send enqueues msgs in order with SendMessageBatch (parallel batches when
// order does not matter).
func send(t testing.TB, api *sqs.Client, url string, msgs []msg, parallel int) {
	t.Helper()
	var batches [][]msg
	for len(msgs) > 0 {
		n := min(len(msgs), 10)
		batches = append(batches, msgs[:n])
		msgs = msgs[n:]
	}
	work := make(chan []msg)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Go(func() {
			for b := range work {
				entries := make([]types.SendMessageBatchRequestEntry, len(b))
				for i, m := range b {
					entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(m.body)}
					if m.group != "" {
						entries[i].MessageGroupId = aws.String(m.group)
						entries[i].MessageDeduplicationId = aws.String(m.dedup)
					}
				}
				out, err := api.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("send: %v", err)
	default:
	}
}

// bodies makes n messages with bodies fmt.Sprintf(format, i).
func bodies(format string, n int) []msg {
	out := make([]msg, n)
	for i := range out {
		out[i] = msg{body: fmt.Sprintf(format, i)}
	}
	return out
}

// depth returns the queue's visible and in-flight message counts.
func depth(t testing.TB, api *sqs.Client, url string) (visible, inFlight int) {
	t.Helper()
	out, err := api.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("queue attributes: %v", err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}

// assertEmpty checks that nothing is left in the queue, visible or not.
func assertEmpty(t testing.TB, api *sqs.Client, url string) {
	t.Helper()
	if v, f := depth(t, api, url); v+f != 0 {
		t.Errorf("queue not empty: %d visible, %d in flight", v, f)
	}
}

// receiveAll reads every message now visible in url (it leaves them in
// flight for 60s).
func receiveAll(t testing.TB, api *sqs.Client, url string) []types.Message {
	t.Helper()
	var all []types.Message
	for {
		out, err := api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// waitFor polls cond (external state) until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stallTimeout is how long a load test may go without one more message
// finished before it fails as stuck.
const stallTimeout = 30 * time.Second

// waitProgress waits until done is closed, failing the test only when
// progress (a count that grows as the work goes on) stands still for
// stallTimeout: a load test's length depends on the machine's load (make
// test runs packages side by side on 2 cores), a stall does not.
func waitProgress(t testing.TB, done <-chan struct{}, progress func() int64, what string) {
	t.Helper()
	last, since := progress(), time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if n := progress(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > stallTimeout {
				t.Fatalf("stuck for %v at %d waiting for %s", stallTimeout, n, what)
			}
		}
	}
}

// running is a Consumer's Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
	took   time.Duration
}

// start runs c with h until stop (or the end of the test).
func start(t testing.TB, c *consumer.Consumer, h handler.Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	return startWith(t, ctx, cancel, c, h)
}

// startWith is start with Run's context made by the caller, who hands it to
// the middlewares that end their waits at the stop.
func startWith(t testing.TB, ctx context.Context, cancel context.CancelFunc, c *consumer.Consumer, h handler.Handler) *running {
	t.Helper()
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, h) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels Run's context (SIGTERM) and returns Run's result and how
// long the drain took.
func (r *running) stop() (time.Duration, error) {
	r.once.Do(func() {
		begin := time.Now()
		r.cancel()
		r.err = <-r.done
		r.took = time.Since(begin)
	})
	return r.took, r.err
}

// newConsumer makes a consumer of input with cfg (queue URLs filled in).
// Unless a test says otherwise its polls are 1s: a stop then does not wait
// out a 20s poll in flight (the consumer lets it finish).
func newConsumer(t testing.TB, api consumer.SQSAPI, input string, cfg consumer.Config) *consumer.Consumer {
	t.Helper()
	cfg.QueueURL = input
	if cfg.WaitTime == 0 {
		cfg.WaitTime = time.Second
	}
	c, err := consumer.New(api, cfg)
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	return c
}

// errTest is a handler failure.
var errTest = errors.New("test failure")

// quietStop answers the long poll in flight at the stop at once, with no
// messages, instead of letting it wait out its WaitTime: for tests about
// something else than the stop, whose queue is empty by then (a poll cut
// with messages in it would strand them). Its zero value is not usable:
// make it with newQuietStop.
type quietStop struct {
	consumer.SQSAPI
	stopping chan struct{}
	once     sync.Once
}

var _ consumer.SQSAPI = (*quietStop)(nil)

func newQuietStop(api consumer.SQSAPI) *quietStop {
	return &quietStop{SQSAPI: api, stopping: make(chan struct{})}
}

// stop ends the poll in flight and makes the later ones answer empty at
// once; call it just before running.stop.
func (q *quietStop) stop() { q.once.Do(func() { close(q.stopping) }) }

func (q *quietStop) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-q.stopping:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	out, err := q.SQSAPI.ReceiveMessage(pollCtx, in, opts...)
	select {
	case <-q.stopping:
		if err != nil && ctx.Err() == nil {
			return &sqs.ReceiveMessageOutput{}, nil
		}
	default:
	}
	return out, err
}
