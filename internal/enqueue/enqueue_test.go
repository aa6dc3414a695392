package enqueue_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/enqueue"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/eventfile"
	"github.com/chatprep/chatprep/internal/sqsbatch/sqsbatchtest"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

func client() *sqs.Client { return kumotest.Client() }

func queue(t *testing.T, api *sqs.Client, fifo bool) string { return kumotest.Queue(t, api, fifo) }

// countingAPI counts SendMessageBatch calls and their largest batch.
type countingAPI struct {
	enqueue.API
	calls, largest atomic.Int64
}

func (c *countingAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	c.calls.Add(1)
	if n := int64(len(in.Entries)); n > c.largest.Load() {
		c.largest.Store(n)
	}
	return c.API.SendMessageBatch(ctx, in, opts...)
}

// drain receives and deletes want messages, failing when none comes for
// 20 s. Each receive hides its messages for 2 s only: should an answer be
// lost on the way (the proxy's connection to kumo reset under load), its
// messages, and the FIFO groups they lock, come back soon.
func drain(t *testing.T, api *sqs.Client, url string, want int) []types.Message {
	t.Helper()
	var got []types.Message
	seen := map[string]bool{}
	last := time.Now()
	for len(got) < want {
		out, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 2,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 && time.Since(last) > 20*time.Second {
			t.Fatalf("queue drained after %d messages, want %d", len(got), want)
		}
		for _, m := range out.Messages {
			last = time.Now()
			if !seen[aws.ToString(m.MessageId)] {
				seen[aws.ToString(m.MessageId)] = true
				got = append(got, m)
			}
			if _, err := api.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

func TestEnqueueRejectsEachInvalidLineAndSendsTheRest(t *testing.T) {
	t.Parallel()
	api := client()
	url := queue(t, api, true)
	valid := func(i int) string {
		return fmt.Sprintf(`{"event_id":"e-%d","chat_id":"c-%d","text":"hello %d","sent_at":"2026-11-28T10:00:%02dZ"}`, i, i%3, i, i%60)
	}
	lines := []string{}
	for i := range 23 {
		lines = append(lines, valid(i))
	}
	bad := map[int]string{ // line number → expected reason
		3:  "invalid_json",
		7:  "missing_field: event_id",
		9:  "invalid_field: chat_id",
		12: "missing_field: text",
		15: "invalid_field: sent_at",
		18: "text_too_long",
		20: "invalid_encoding",
		22: "invalid_field: role",
		24: "invalid_field: event_id: must be a string",
	}
	badLine := map[int]string{
		3:  `{"event_id": "e-x", `,
		7:  `{"chat_id":"c-1","text":"x","sent_at":"2026-11-28T10:00:00Z"}`,
		9:  `{"event_id":"e-9","chat_id":"has space","text":"x","sent_at":"2026-11-28T10:00:00Z"}`,
		12: `{"event_id":"e-12","chat_id":"c-1","sent_at":"2026-11-28T10:00:00Z"}`,
		15: `{"event_id":"e-15","chat_id":"c-1","text":"x","sent_at":"yesterday"}`,
		18: `{"event_id":"e-18","chat_id":"c-1","text":"` + strings.Repeat("a", 16385) + `","sent_at":"2026-11-28T10:00:00Z"}`,
		20: "{\"event_id\":\"e-20\",\"chat_id\":\"c-1\",\"text\":\"\xff\xfe\",\"sent_at\":\"2026-11-28T10:00:00Z\"}",
		22: `{"event_id":"e-22","chat_id":"c-1","role":"system","text":"x","sent_at":"2026-11-28T10:00:00Z"}`,
		24: `{"event_id":24,"chat_id":"c-1","text":"x","sent_at":"2026-11-28T10:00:00Z"}`,
	}
	var input []string
	n := 0
	for ln := 1; n < len(lines) || badLine[ln] != ""; ln++ {
		if b, ok := badLine[ln]; ok {
			input = append(input, b)
		} else {
			input = append(input, lines[n])
			n++
		}
	}
	input = append(input, "", "   ") // blank lines are skipped, not rejected
	var rejects strings.Builder
	capi := &countingAPI{API: api}
	rep, err := enqueue.NewSender(capi, url, true, enqueue.Config{Output: eventfile.Output{Rejects: &rejects}}).Send(t.Context(), strings.NewReader(strings.Join(input, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != len(lines) || rep.Rejected != len(bad) {
		t.Errorf("report %+v, want sent %d rejected %d", rep, len(lines), len(bad))
	}
	for ln, reason := range bad {
		want := fmt.Sprintf("line %d: %s", ln, reason)
		if !strings.Contains(rejects.String(), want) {
			t.Errorf("rejects lack %q:\n%s", want, rejects.String())
		}
	}
	if got := capi.largest.Load(); got > 10 {
		t.Errorf("a batch of %d entries", got)
	}
	if got := capi.calls.Load(); got > int64(len(lines)/2) {
		t.Errorf("%d SendMessageBatch calls for %d lines: not sent in batches", got, len(lines))
	}
	msgs := drain(t, api, url, len(lines))
	for _, m := range msgs {
		body := aws.ToString(m.Body)
		var i int
		if _, err := fmt.Sscanf(body, `{"event_id":"e-%d"`, &i); err != nil {
			t.Fatalf("unexpected body %s", body)
		}
		if body != valid(i) {
			t.Errorf("body changed: %s", body)
		}
		if g, want := m.Attributes["MessageGroupId"], fmt.Sprintf("c-%d", i%3); g != want {
			t.Errorf("e-%d MessageGroupId = %q, want %q", i, g, want)
		}
		if d, want := m.Attributes["MessageDeduplicationId"], fmt.Sprintf("e-%d", i); d != want {
			t.Errorf("e-%d MessageDeduplicationId = %q, want %q", i, d, want)
		}
	}
}

func TestEnqueueStandardQueueHasNoFIFOAttributes(t *testing.T) {
	t.Parallel()
	api := client()
	url := queue(t, api, false)
	in := `{"event_id":"e-1","chat_id":"c-1","type":"mute"}` + "\r\n" + `{"event_id":"e-2","chat_id":"c-1","type":"unmute"}`
	rep, err := enqueue.NewSender(api, url, false, enqueue.Config{Output: eventfile.Output{Rejects: os.Stderr}}).Send(t.Context(), strings.NewReader(in))
	if err != nil || rep.Sent != 2 || rep.Rejected != 0 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	for _, m := range drain(t, api, url, 2) {
		if _, ok := m.Attributes["MessageGroupId"]; ok {
			t.Errorf("standard queue message has a MessageGroupId")
		}
		if strings.HasSuffix(aws.ToString(m.Body), "\r") {
			t.Errorf("CR kept in body %q", aws.ToString(m.Body))
		}
	}
}

// refusing is an HTTP transport whose every connection is refused, as an
// SQS endpoint nobody listens on refuses it: the SDK sees the dial error,
// and no socket is opened (a synctest bubble could not hold one).
type refusing struct{}

func (refusing) RoundTrip(req *http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
}

// An unreachable SQS: the sender retries each batch with its back-off (8
// attempts, some 3.5-7s of waits, in virtual time here), then stops with an
// error naming the lines it could not send, and counts none as sent.
func TestEnqueueStopsWhenSQSIsUnreachable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := sqs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("t", "t", ""),
			RetryMaxAttempts: 1, HTTPClient: &http.Client{Transport: refusing{}}},
			func(o *sqs.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
		start := time.Now()
		rep, err := enqueue.NewSender(api, "http://127.0.0.1:1/000000000000/q", false, enqueue.Config{Output: eventfile.Output{Rejects: os.Stderr}}).Send(t.Context(),
			strings.NewReader(`{"event_id":"e-1","chat_id":"c-1","type":"mute"}`))
		if err == nil || rep.Sent != 0 || !strings.Contains(err.Error(), "send lines 1-1") {
			t.Fatalf("report %+v, err %v", rep, err)
		}
		// The retries waited, jittered, half to all of 0.1+0.2+0.4+0.8+1.6+2+2s.
		if took := time.Since(start); took < 3550*time.Millisecond || took > 7100*time.Millisecond {
			t.Errorf("gave up after %v, want after the back-off's 3.55-7.1s", took)
		}
	})
}

// forgettingAPI answers as if SQS never mentioned the entry whose body
// contains forget: in neither Successful nor Failed.
type forgettingAPI struct {
	enqueue.API
	forget string
}

func (f *forgettingAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out, err := f.API.SendMessageBatch(ctx, in, opts...)
	if err != nil {
		return out, err
	}
	ids := map[string]bool{}
	for _, e := range in.Entries {
		if strings.Contains(aws.ToString(e.MessageBody), f.forget) {
			ids[aws.ToString(e.Id)] = true
		}
	}
	kept := out.Successful[:0]
	for _, s := range out.Successful {
		if !ids[aws.ToString(s.Id)] {
			kept = append(kept, s)
		}
	}
	out.Successful = kept
	return out, nil
}

// TestEntryNotAnsweredIsNotCountedAsSent: an entry SQS's answer leaves out
// is sent again and, when it is never confirmed, reported with its line
// number, not counted as sent (the bug: it was silently dropped). The
// sender's retries of it take its back-off (some 3.5-7s): in virtual time,
// with an SQS that accepts every entry (the sends to kumo are the other
// tests').
func TestEntryNotAnsweredIsNotCountedAsSent(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := `{"event_id":"e-1","chat_id":"c-1","type":"mute"}
{"event_id":"e-forgotten","chat_id":"c-2","type":"mute"}
{"event_id":"e-3","chat_id":"c-3","type":"mute"}
`
		var rejects strings.Builder
		api := &forgettingAPI{API: &sqsbatchtest.Accepting{}, forget: "e-forgotten"}
		rep, err := enqueue.NewSender(api, "http://sqs.fake/000000000000/q.fifo", true, enqueue.Config{Output: eventfile.Output{Rejects: &rejects}}).Send(t.Context(), strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != 2 || rep.Rejected != 1 || !strings.HasPrefix(rejects.String(), "line 2: ") || !strings.Contains(rejects.String(), "NotAnswered") {
			t.Errorf("report %+v, rejects %q; want 2 sent and line 2 reported", rep, rejects.String())
		}
	})
}

// TestEnqueueEscapesWhatSQSRefuses: a line whose text holds U+FFFE or
// U+FFFF raw is a valid event (valid UTF-8) that SQS refuses as it is; it is
// sent with those characters escaped and decodes to the same event.
func TestEnqueueEscapesWhatSQSRefuses(t *testing.T) {
	t.Parallel()
	api := client()
	url := queue(t, api, true)
	lines := []string{
		`{"event_id":"e-1","chat_id":"c-1","text":"a` + "\uffff" + `b","sent_at":"2026-11-28T10:00:00Z"}`,
		`{"event_id":"e-2","chat_id":"c-1","text":"` + "\ufffe\uffff" + `","sent_at":"2026-11-28T10:00:01Z","user_id":"u` + "\uffff" + `"}`,
	}
	rep, err := enqueue.NewSender(api, url, true, enqueue.Config{Output: eventfile.Output{Rejects: os.Stderr}}).Send(t.Context(), strings.NewReader(strings.Join(lines, "\n")))
	if err != nil || rep.Sent != 2 || rep.Rejected != 0 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	want := map[string]event.Event{}
	for _, l := range lines {
		ev, err := event.Decode([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		want[ev.EventID] = ev
	}
	for _, m := range drain(t, api, url, 2) {
		body := aws.ToString(m.Body)
		if strings.ContainsAny(body, "\ufffe\uffff") {
			t.Errorf("body %q holds U+FFFE or U+FFFF raw", body)
		}
		got, err := event.Decode([]byte(body))
		if err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if w := want[got.EventID]; got.Text != w.Text || got.UserID != w.UserID {
			t.Errorf("%s decodes to text %q user %q, want %q %q", got.EventID, got.Text, got.UserID, w.Text, w.UserID)
		}
	}
}
