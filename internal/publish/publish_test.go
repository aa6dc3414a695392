package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// The test binary runs kumo once (kumotest.Main); every test makes its own
// queues. Its clients share transport, closed when the tests end.
var transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}

func TestMain(m *testing.M) { kumotest.Main(m, transport.CloseIdleConnections) }

// client is an SQS client of endpoint. The SDK's own retries are off, so
// the publisher's retries are the ones tested.
func client(endpoint string) *sqs.Client { return clientVia(endpoint, transport) }

func clientVia(endpoint string, tr *http.Transport) *sqs.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: tr},
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

// countingAPI counts calls and remembers each call's entries.
type countingAPI struct {
	publish.SQSAPI
	mu      sync.Mutex
	batches [][]types.SendMessageBatchRequestEntry
}

var _ publish.SQSAPI = (*countingAPI)(nil)

func (c *countingAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	c.mu.Lock()
	c.batches = append(c.batches, slices.Clone(in.Entries))
	c.mu.Unlock()
	return c.SQSAPI.SendMessageBatch(ctx, in, opts...)
}

func (c *countingAPI) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n []int
	for _, b := range c.batches {
		n = append(n, len(b))
	}
	return n
}

func newPublisher(t *testing.T, api publish.SQSAPI, cfg publish.Config) *publish.Publisher {
	t.Helper()
	p, err := publish.New(api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

func result(chat string, i int) *event.Result {
	return &event.Result{
		EventID: fmt.Sprintf("%s-e%03d", chat, i), ChatID: chat, Route: "general",
		History: []event.ContextMessage{}, Relevant: []event.ContextMessage{}, Degraded: []event.Degradation{},
		Worker: "test", ProcessedAt: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
	}
}

// receiveAll reads want messages (and fails if the queue runs dry first).
func receiveAll(t *testing.T, api *sqs.Client, url string, want int) []types.Message {
	t.Helper()
	var got []types.Message
	for len(got) < want {
		out, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			t.Fatalf("queue ran dry after %d of %d messages", len(got), want)
		}
		for _, m := range out.Messages {
			got = append(got, m)
			if _, err := api.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

// busy publishes one result, at once (the publisher was quiet), so that
// the results published right after it count as arriving under load: they
// wait the linger time for more.
func busy(t *testing.T, p *publish.Publisher) {
	t.Helper()
	if err := p.Publish(t.Context(), result("busy", 0)); err != nil {
		t.Fatal(err)
	}
}

// TestBatchesFillAcrossMessages: 40 handlers publishing at once, right
// after a first result, make 4 full batches, and every result arrives.
func TestBatchesFillAcrossMessages(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, false)
	api := &countingAPI{SQSAPI: sqsc}
	p := newPublisher(t, api, publish.Config{QueueURL: url, Linger: time.Hour}) // under load only full batches leave
	busy(t, p)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if err := p.Publish(t.Context(), result(fmt.Sprintf("c%d", i%7), i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := api.sizes(); !slices.Equal(got, []int{1, 10, 10, 10, 10}) {
		t.Errorf("batch sizes %v, want the first result alone, then four batches of 10", got)
	}
	if s := p.Stats(); s.Calls != 5 || s.Accepted != 41 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
	msgs := receiveAll(t, sqsc, url, 41)
	seen := map[string]bool{}
	for _, m := range msgs {
		var r event.Result
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
			t.Fatalf("body is not a result: %v", err)
		}
		seen[r.EventID] = true
	}
	if len(seen) != 41 {
		t.Errorf("%d distinct results arrived, want 41", len(seen))
	}
}

// TestLingerBoundsTheWait: a lone result leaves at once, even with an hour
// of linger (the publisher was quiet: lingering is for load).
func TestLingerBoundsTheWait(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, false)
	p := newPublisher(t, sqsc, publish.Config{QueueURL: url, Linger: time.Hour})
	if err := p.Publish(t.Context(), result("c1", 1)); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Calls != 1 || s.Accepted != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestFIFOAndMessageAttributes: on a FIFO queue the group is the chat and
// the deduplication id the event; every message carries event_id, chat_id
// and route as String attributes.
func TestFIFOAndMessageAttributes(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, true)
	p := newPublisher(t, sqsc, publish.Config{QueueURL: url})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			r := result(fmt.Sprintf("chat-%d@x.io", i), i)
			r.Route = "odoo_erp"
			if err := p.Publish(t.Context(), r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, m := range receiveAll(t, sqsc, url, 6) {
		var r event.Result
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
			t.Fatal(err)
		}
		if g, d := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]; g != r.ChatID || d != r.EventID {
			t.Errorf("group %q dedup %q, want %q and %q", g, d, r.ChatID, r.EventID)
		}
		for name, want := range map[string]string{"event_id": r.EventID, "chat_id": r.ChatID, "route": "odoo_erp"} {
			a := m.MessageAttributes[name]
			if aws.ToString(a.StringValue) != want || aws.ToString(a.DataType) != "String" {
				t.Errorf("attribute %s = %q (%s), want %q (String)", name, aws.ToString(a.StringValue), aws.ToString(a.DataType), want)
			}
		}
	}
}

// TestPerChatOrderIsKept: five chats publishing twenty results each, all
// at once, arrive on the FIFO queue in each chat's order.
func TestPerChatOrderIsKept(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, true)
	p := newPublisher(t, sqsc, publish.Config{QueueURL: url})
	const chats, each = 5, 20
	var wg sync.WaitGroup
	for c := range chats {
		wg.Go(func() { // a chat's results one after another, as the consumer delivers them
			for i := range each {
				if err := p.Publish(t.Context(), result(fmt.Sprintf("c%d", c), i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	last := map[string]string{}
	for _, m := range receiveAll(t, sqsc, url, chats*each) {
		var r event.Result
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
			t.Fatal(err)
		}
		if r.EventID <= last[r.ChatID] {
			t.Errorf("chat %s: %s arrived after %s", r.ChatID, r.EventID, last[r.ChatID])
		}
		last[r.ChatID] = r.EventID
	}
	if s := p.Stats(); s.Calls >= chats*each {
		t.Errorf("%d calls for %d results: no batching across chats", s.Calls, chats*each)
	}
}

// groupCheckingAPI fails the test if a batch holds two entries of one
// chat, or two calls in flight share a chat.
type groupCheckingAPI struct {
	publish.SQSAPI
	t        *testing.T
	mu       sync.Mutex
	inFlight map[string]bool
	order    map[string][]string
}

func (g *groupCheckingAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	g.mu.Lock()
	var groups []string
	for _, e := range in.Entries {
		grp := aws.ToString(e.MessageGroupId)
		if g.inFlight[grp] {
			g.t.Errorf("two results of chat %s in flight at once", grp)
		}
		g.inFlight[grp] = true
		groups = append(groups, grp)
		g.order[grp] = append(g.order[grp], aws.ToString(e.MessageDeduplicationId))
	}
	g.mu.Unlock()
	out, err := g.SQSAPI.SendMessageBatch(ctx, in, opts...)
	g.mu.Lock()
	for _, grp := range groups {
		delete(g.inFlight, grp)
	}
	g.mu.Unlock()
	return out, err
}

// TestOneEntryPerChatInFlight: results of one chat published at the same
// time are sent one at a time, in the order the publisher took them.
func TestOneEntryPerChatInFlight(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, true)
	api := &groupCheckingAPI{SQSAPI: sqsc, t: t, inFlight: map[string]bool{}, order: map[string][]string{}}
	p := newPublisher(t, api, publish.Config{QueueURL: url, Senders: 4})
	var mu sync.Mutex
	var taken []string
	p.SetTestHookAccepted(func(id string) { mu.Lock(); taken = append(taken, id); mu.Unlock() })
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if err := p.Publish(t.Context(), result(fmt.Sprintf("c%d", i%2), i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, chat := range []string{"c0", "c1"} {
		var want []string
		for _, id := range taken {
			if strings.HasPrefix(id, chat+"-") {
				want = append(want, id)
			}
		}
		if got := api.order[chat]; !slices.Equal(got, want) {
			t.Errorf("chat %s sent in order %v, taken in order %v", chat, got, want)
		}
	}
}

// breakingAPI removes the MessageGroupId of one result, so that the real
// queue refuses that entry only.
type breakingAPI struct {
	publish.SQSAPI
	eventID string
}

func (b *breakingAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	for i, e := range in.Entries {
		if aws.ToString(e.MessageDeduplicationId) == b.eventID {
			in.Entries[i].MessageGroupId = nil
		}
	}
	return b.SQSAPI.SendMessageBatch(ctx, in, opts...)
}

// TestEntryFailureReachesItsCallerOnly: of a batch of ten, the one entry
// SQS refuses fails its own Publish call; the nine others succeed.
func TestEntryFailureReachesItsCallerOnly(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, true)
	api := &countingAPI{SQSAPI: &breakingAPI{SQSAPI: sqsc, eventID: "c3-e003"}}
	p := newPublisher(t, api, publish.Config{QueueURL: url, Linger: time.Hour})
	busy(t, p)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { errs[i] = p.Publish(t.Context(), result(fmt.Sprintf("c%d", i), i)) })
	}
	wg.Wait()
	for i, err := range errs {
		var ee *sqsbatch.Error
		switch {
		case i == 3 && (!errors.As(err, &ee) || !ee.SenderFault || ee.Transient() || ee.Code == "" || !strings.Contains(err.Error(), "c3-e003")):
			t.Errorf("refused entry: %v, want a permanent sender-fault *sqsbatch.Error naming the result", err)
		case i != 3 && err != nil:
			t.Errorf("entry %d: %v", i, err)
		}
	}
	if got := api.sizes(); !slices.Equal(got, []int{1, 10}) {
		t.Errorf("batches %v, want the first result, then the ten: a refused entry is not retried", got)
	}
	receiveAll(t, sqsc, url, 10)
}

// TestTransientErrorsAreRetried: throttling, 503 and a dropped connection
// are retried with back-off until SQS answers.
func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	for _, fault := range []devstack.Fault{
		{Status: 400, Code: "ThrottlingException"},
		{Status: 503, Code: "ServiceUnavailable"},
		{Drop: true},
	} {
		t.Run(fmt.Sprintf("%d%s%v", fault.Status, fault.Code, fault.Drop), func(t *testing.T) {
			t.Parallel()
			own, err := devstack.StartAWS() // its own proxy, so its faults hit this test only
			if err != nil {
				t.Fatal(err)
			}
			defer own.Stop()
			tr := &http.Transport{} // dropped connections stay out of the shared pool
			defer tr.CloseIdleConnections()
			sqsc := clientVia(own.URL, tr)
			url := kumotest.Queue(t, sqsc, false)
			var faults atomic.Int64
			own.SetFault(func(api string) devstack.Fault {
				if api == "SQS.SendMessageBatch" && faults.Add(1) <= 2 {
					return fault
				}
				return devstack.Fault{}
			})
			p := newPublisher(t, sqsc, publish.Config{QueueURL: url, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
			if err := p.Publish(t.Context(), result("c1", 1)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if s := p.Stats(); s.Calls != 3 || s.Retries != 2 || s.Accepted != 1 {
				t.Errorf("stats %+v, want 3 calls (2 retries)", s)
			}
			receiveAll(t, sqsc, url, 1)
			own.SetFault(nil)
		})
	}
}

// TestPermanentErrorsAreNotRetried: an unknown queue fails every caller of
// the batch at once.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	p := newPublisher(t, sqsc, publish.Config{QueueURL: kumotest.Queue(t, sqsc, false) + "-missing"})
	if err := p.Publish(t.Context(), result("c1", 1)); err == nil || handler.IsTransient(err) {
		t.Fatalf("Publish to a missing queue: %v", err)
	}
	if s := p.Stats(); s.Calls != 1 || s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}
}

// blockingAPI holds every call until its context ends.
type blockingAPI struct {
	publish.SQSAPI // only SendMessageBatch is called
	started        chan struct{}
}

func (b *blockingAPI) SendMessageBatch(ctx context.Context, _ *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestCallerThatStopsWaitingGetsItsContextError: Publish ends with the
// caller's context even while the call is stuck.
func TestCallerThatStopsWaitingGetsItsContextError(t *testing.T) {
	t.Parallel()
	api := &blockingAPI{started: make(chan struct{}, 10)}
	p, err := publish.New(api, publish.Config{QueueURL: "http://q/1/r.fifo", Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	published := make(chan error)
	go func() { published <- p.Publish(ctx, result("c1", 1)) }()
	<-api.started
	cancel()
	if err := <-published; !errors.Is(err, context.Canceled) {
		t.Errorf("Publish = %v, want context.Canceled", err)
	}
	// Close gives up on the stuck call at its deadline and still stops
	// every goroutine (goleak checks).
	closeCtx, cancelClose := context.WithCancel(t.Context())
	cancelClose()
	if err := p.Close(closeCtx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v", err)
	}
}

// TestCloseFlushesPendingResults: Close sends what waits in a batch
// without waiting for the linger bound, and refuses later results.
func TestCloseFlushesPendingResults(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, false)
	p, err := publish.New(sqsc, publish.Config{QueueURL: url, Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	busy(t, p)
	accepted := make(chan string, 3)
	p.SetTestHookAccepted(func(id string) { accepted <- id })
	published := make(chan error, 3)
	for i := range 3 {
		go func() { published <- p.Publish(t.Context(), result("c1", i)) }()
	}
	for range 3 {
		<-accepted
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-published; err != nil {
			t.Error(err)
		}
	}
	if err := p.Publish(t.Context(), result("c1", 9)); !errors.Is(err, publish.ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if s := p.Stats(); s.Calls != 2 {
		t.Errorf("%d calls, want 2 (the first result, then the three)", s.Calls)
	}
	receiveAll(t, sqsc, url, 4)
}

// TestBatchSizeLimit: results of about 100 KiB go two per call, and one
// above 256 KiB is refused before any call. Under load (after a first
// result) with a linger of an hour, the pair leaves when the third result
// does not fit beside it, and Close sends the third: no timing decides the
// batches (with a 50 ms linger a quiet batcher sends each result at once,
// and a loaded machine made three batches of one).
func TestBatchSizeLimit(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, false)
	api := &countingAPI{SQSAPI: sqsc}
	p, err := publish.New(api, publish.Config{QueueURL: url, Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	big := func(i, kib int) *event.Result {
		r := result("c1", i)
		r.History = append(r.History, event.ContextMessage{EventID: "x", Role: event.RoleUser, Text: strings.Repeat("a", kib*1024)})
		return r
	}
	var tooLarge *publish.TooLargeError
	if err := p.Publish(t.Context(), big(9, 257)); !errors.As(err, &tooLarge) || tooLarge.Limit != publish.MaxBatchBytes {
		t.Errorf("257 KiB result: %v", err)
	}
	if n := len(api.sizes()); n != 0 {
		t.Errorf("%d calls for a result refused before any call", n)
	}
	busy(t, p)
	accepted := make(chan string, 3)
	p.SetTestHookAccepted(func(id string) { accepted <- id })
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if err := p.Publish(t.Context(), big(i, 100)); err != nil {
				t.Error(err)
			}
		})
	}
	for range 3 { // all three in the batcher: the pair has left or leaves
		<-accepted
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	sizes := api.sizes()
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 1, 2}) {
		t.Errorf("batch sizes %v, want the first result's 1, then 2 and 1", sizes)
	}
	receiveAll(t, sqsc, url, 4)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c := publish.Config{QueueURL: "u"}.WithDefaults()
	if c.Linger != publish.DefaultLinger || c.Senders != publish.DefaultSenders || c.MaxAttempts != publish.DefaultMaxAttempts ||
		c.RetryBase != publish.DefaultRetryBase || c.RetryMax != publish.DefaultRetryMax || c.AttemptTimeout != publish.DefaultAttemptTimeout {
		t.Errorf("defaults %+v", c)
	}
	for _, bad := range []publish.Config{{}, {QueueURL: "u", Senders: -1}, {QueueURL: "u", Linger: -1}, {QueueURL: "u", RetryBase: time.Second, RetryMax: time.Millisecond}} {
		if _, err := publish.New(nil, bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

// TestRepublishedResultIsDeduplicated: a redelivered event's result (same
// event_id, new timings) goes out again and the FIFO queue keeps one. Against
// kumo this needs SQS_VERIFY_CHECKSUMS=false (the SDK's
// DisableMessageChecksumValidation): kumo answers a deduplicated send with
// the first body's MD5 (see LOCAL-STACK.md).
func TestRepublishedResultIsDeduplicated(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, true)
	lenient := sqs.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(kumotest.URL())
		o.DisableMessageChecksumValidation = true
	})
	p := newPublisher(t, lenient, publish.Config{QueueURL: url})
	first, again := result("c1", 1), result("c1", 1)
	again.TimingsMS.Total = 42 // a new delivery, new timings: a different body
	for _, r := range []*event.Result{first, again} {
		if err := p.Publish(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	msgs := receiveAll(t, sqsc, url, 1)
	out, err := sqsc.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 || !strings.Contains(aws.ToString(msgs[0].Body), `"total":0`) {
		t.Errorf("want only the first result, got %s and %d more", aws.ToString(msgs[0].Body), len(out.Messages))
	}
}

// TestResultWithCharactersSQSRefusesRaw: a result whose history and
// relevant texts hold U+FFFE and U+FFFF (valid UTF-8, stored as they came)
// is accepted by the queue (the devstack proxy refuses those characters raw,
// as SQS does) and decodes to the same texts; so does the result sent in the
// same batch as it.
func TestResultWithCharactersSQSRefusesRaw(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, true)
	p := newPublisher(t, sqsc, publish.Config{QueueURL: url})
	texts := []string{"\uffff", "a\ufffeb", "order S00042 \uffff\ufffe\uffff done"}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r := result("chat-nonchar", 1)
	for i, text := range texts {
		r.History = append(r.History, event.ContextMessage{EventID: fmt.Sprintf("h%d", i), Role: event.RoleUser, Text: text, SentAt: at})
	}
	score := 0.5
	r.Relevant = append(r.Relevant, event.ContextMessage{EventID: "r1", Role: event.RoleAssistant, Text: texts[2], SentAt: at, Score: &score})
	plain := result("chat-plain", 2)
	var wg sync.WaitGroup
	for _, res := range []*event.Result{r, plain} {
		wg.Go(func() {
			if err := p.Publish(t.Context(), res); err != nil {
				t.Errorf("publish %s: %v", res.EventID, err)
			}
		})
	}
	wg.Wait()
	for _, m := range receiveAll(t, sqsc, url, 2) {
		var got event.Result
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &got); err != nil {
			t.Fatal(err)
		}
		if got.EventID != r.EventID {
			continue
		}
		for i, text := range texts {
			if got.History[i].Text != text {
				t.Errorf("history %d: %q, want %q", i, got.History[i].Text, text)
			}
		}
		if got.Relevant[0].Text != texts[2] {
			t.Errorf("relevant: %q, want %q", got.Relevant[0].Text, texts[2])
		}
	}
}
