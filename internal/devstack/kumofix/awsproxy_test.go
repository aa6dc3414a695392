package kumofix_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
)

// TestAWSProxyAnswersLikeSQS: through the proxy, a FIFO message comes back
// with its MessageGroupId and MessageDeduplicationId (kumo alone drops them),
// calls are counted by API, and injected faults reach the SDK as API errors.
func TestAWSProxyAnswersLikeSQS(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(kumotest.Queue(t, api, true))} // a name of its own: -count=N reuses kumo's process-wide state
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("one"),
		MessageGroupId: aws.String("chat-1"), MessageDeduplicationId: aws.String("e-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("two"), MessageGroupId: aws.String("chat-2"), MessageDeduplicationId: aws.String("e-2")},
	}}); err != nil {
		t.Fatal(err)
	}
	out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"one": {"chat-1", "e-1"}, "two": {"chat-2", "e-2"}}
	if len(out.Messages) != 2 {
		t.Fatalf("received %d messages, want 2", len(out.Messages))
	}
	for _, m := range out.Messages {
		w := want[aws.ToString(m.Body)]
		if m.Attributes["MessageGroupId"] != w[0] || m.Attributes["MessageDeduplicationId"] != w[1] {
			t.Errorf("%s: attributes %v, want group %s dedup %s", aws.ToString(m.Body), m.Attributes, w[0], w[1])
		}
	}
	calls := a.Calls()
	if calls["SQS.SendMessage"] != 1 || calls["SQS.SendMessageBatch"] != 1 || calls["SQS.ReceiveMessage"] != 1 {
		t.Errorf("calls = %v", calls)
	}

	a.SetFault(func(api string) devstack.Fault {
		if api == "SQS.ReceiveMessage" {
			return devstack.Fault{Status: 400, Code: "ThrottlingException"}
		}
		return devstack.Fault{}
	})
	_, err = api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Errorf("injected throttling gave %v", err)
	}
	a.SetFault(nil)
	if _, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl}); err != nil {
		t.Errorf("after clearing the fault: %v", err)
	}
}

// TestAWSProxyUnfaultedURL: while a fault answers every call on URL, the
// same emulator answers on UnfaultedURL, with the FIFO attributes of
// messages sent through either endpoint.
func TestAWSProxyUnfaultedURL(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	faulted, clean := sqsClient(a.URL), sqsClient(a.UnfaultedURL())
	if a.UnfaultedURL() == a.URL {
		t.Fatalf("UnfaultedURL is URL (%s)", a.URL)
	}
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(kumotest.Queue(t, faulted, true))} // a name of its own: -count=N reuses kumo's process-wide state
	a.SetFault(func(string) devstack.Fault { return devstack.Fault{Status: 503, Code: "ServiceUnavailable"} })
	defer a.SetFault(nil)
	if _, err := faulted.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("x"),
		MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d-0")}); err == nil {
		t.Fatal("the faulted endpoint accepted a send")
	}
	if _, err := clean.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("one"),
		MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d-1")}); err != nil {
		t.Fatalf("send through UnfaultedURL during the fault: %v", err)
	}
	out, err := clean.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "one" || out.Messages[0].Attributes["MessageGroupId"] != "g" {
		t.Fatalf("received %+v, want the one message with its group", out.Messages)
	}
	if n := a.Calls()["SQS.SendMessage"]; n != 2 {
		t.Errorf("SendMessage calls = %d, want 2 (both endpoints count)", n)
	}
}

// TestAWSProxyTruncate: an answer cut short fails its call (the SDK cannot
// deserialize it) and the SDK warns through its logger that it could not
// read the rest of the body; the next call goes through.
func TestAWSProxyTruncate(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	var warnings []string
	logger := logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		if c == logging.Warn {
			warnings = append(warnings, fmt.Sprintf(format, v...))
		}
	})
	api := sqs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("t", "t", ""),
		Logger: logger}, func(o *sqs.Options) { o.BaseEndpoint = aws.String(a.URL) })
	if _, err := api.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("truncate-test")}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	a.SetFault(func(api string) devstack.Fault {
		return devstack.Fault{Truncate: api == "SQS.GetQueueUrl" && calls.Add(1) == 1}
	})
	in := &sqs.GetQueueUrlInput{QueueName: aws.String("truncate-test")}
	if _, err := api.GetQueueUrl(t.Context(), in); !errors.As(err, new(*smithy.DeserializationError)) {
		t.Errorf("GetQueueUrl through a truncated answer: %v, want a deserialization error", err)
	}
	out, err := api.GetQueueUrl(t.Context(), in)
	if err != nil || !strings.HasSuffix(aws.ToString(out.QueueUrl), "/truncate-test") {
		t.Fatalf("GetQueueUrl after the fault: %v %v", out, err)
	}
	if calls.Load() != 2 || len(warnings) != 1 || !strings.Contains(warnings[0], "failed to discard remaining HTTP response body") {
		t.Errorf("%d calls, SDK warnings %q; want 2 calls and the warning about the rest of the body", calls.Load(), warnings)
	}
}

// startAWS starts the embedded SQS/CloudWatch (kumo behind the proxy) for t.
func startAWS(t *testing.T) *devstack.AWS {
	t.Helper()
	a, err := devstack.StartAWS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// sqsClient is an SQS client of url that does not retry, so that a fault
// reaches the test as it was injected.
func sqsClient(url string) *sqs.Client {
	return sqs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("t", "t", ""), RetryMaxAttempts: 1},
		func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) })
}

// TestAWSProxyDeduplicatesLikeSQS: a FIFO message sent again with the same
// deduplication id within five minutes is accepted and dropped, also after
// the first copy was deleted (kumo alone delivers it again), by SendMessage
// and by SendMessageBatch, where the other entries of the batch still go.
// The answer is the first copy's MessageId and the MD5 of the body sent
// now, which the SDK checks.
func TestAWSProxyDeduplicatesLikeSQS(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(kumotest.Queue(t, api, true))} // a name of its own: -count=N reuses kumo's process-wide state
	first, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("result, first timings"),
		MessageGroupId: aws.String("chat"), MessageDeduplicationId: aws.String("e1")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(got.Messages))
	}
	if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}

	again, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("result, other timings"),
		MessageGroupId: aws.String("chat"), MessageDeduplicationId: aws.String("e1")})
	if err != nil {
		t.Fatalf("send again (the SDK checks the MD5 of this body): %v", err)
	}
	if aws.ToString(again.MessageId) != aws.ToString(first.MessageId) {
		t.Errorf("send again: MessageId %s, want the first copy's %s", aws.ToString(again.MessageId), aws.ToString(first.MessageId))
	}
	batch, err := api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("0"), MessageBody: aws.String("e1 once more"), MessageGroupId: aws.String("chat"), MessageDeduplicationId: aws.String("e1")},
		{Id: aws.String("1"), MessageBody: aws.String("e2"), MessageGroupId: aws.String("chat"), MessageDeduplicationId: aws.String("e2")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Successful) != 2 || len(batch.Failed) != 0 {
		t.Fatalf("batch: %d successful, %d failed; want 2, 0", len(batch.Successful), len(batch.Failed))
	}
	for _, s := range batch.Successful {
		if aws.ToString(s.Id) == "0" && aws.ToString(s.MessageId) != aws.ToString(first.MessageId) {
			t.Errorf("batch entry 0: MessageId %s, want the first copy's", aws.ToString(s.MessageId))
		}
	}
	got, err = api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range got.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	if !slices.Equal(bodies, []string{"e2"}) {
		t.Errorf("queue holds %q, want only e2: the copies of e1 are duplicates", bodies)
	}
}

// TestAWSProxyCountsMessagesGivenBack: a message given back (visibility
// 0) counts as visible at once, as at SQS (kumo alone counts it as not
// visible until the queue is received from again), and a deleted one not
// at all.
func TestAWSProxyCountsMessagesGivenBack(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := kumotest.Queue(t, api, false)
	counts := func() (visible, notVisible string) {
		t.Helper()
		out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q), AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
	}
	for _, b := range []string{"one", "two", "three"} {
		if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10, VisibilityTimeout: 60})
	if err != nil || len(got.Messages) != 3 {
		t.Fatalf("receive: %v %v", got, err)
	}
	if v, n := counts(); v != "0" || n != "3" {
		t.Errorf("all three received: %s visible, %s not; want 0 and 3", v, n)
	}
	if _, err := api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q),
		ReceiptHandle: got.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q),
		Entries: []types.ChangeMessageVisibilityBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: got.Messages[1].ReceiptHandle}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: got.Messages[2].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if v, n := counts(); v != "2" || n != "0" {
		t.Errorf("two given back, one deleted: %s visible, %s not; want 2 and 0", v, n)
	}
	again, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 1, VisibilityTimeout: 60})
	if err != nil || len(again.Messages) != 1 {
		t.Fatalf("receive again: %v %v", again, err)
	}
	if v, n := counts(); v != "1" || n != "1" {
		t.Errorf("one of them received again: %s visible, %s not; want 1 and 1", v, n)
	}
}

// TestAWSProxyKeepsAWSTraceHeader: a message sent with the AWSTraceHeader
// system attribute (X-Ray's) gets it back on receive, when asked for, and
// the send is answered with its MD5 (kumo alone drops it).
func TestAWSProxyKeepsAWSTraceHeader(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := kumotest.Queue(t, api, false)
	const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	sent, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("x"),
		MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{
			"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String(header)}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sent.MD5OfMessageSystemAttributes) == "" {
		t.Error("no MD5OfMessageSystemAttributes on the send")
	}
	for _, names := range [][]types.MessageSystemAttributeName{{types.MessageSystemAttributeNameAWSTraceHeader}, {types.MessageSystemAttributeNameSentTimestamp}} {
		got, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), VisibilityTimeout: 1, WaitTimeSeconds: 5,
			MessageSystemAttributeNames: names})
		if err != nil || len(got.Messages) != 1 {
			t.Fatalf("receive: %v %v", got, err)
		}
		if h, asked := got.Messages[0].Attributes["AWSTraceHeader"], names[0] == types.MessageSystemAttributeNameAWSTraceHeader; asked && h != header || !asked && h != "" {
			t.Errorf("asked for %v: attributes %v", names, got.Messages[0].Attributes)
		}
		if _, err := api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q),
			ReceiptHandle: got.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAWSProxyRefusesWhatSQSRefuses: kumo takes any character in a body;
// through the proxy a body with U+FFFF (valid UTF-8, refused by SQS) fails
// a SendMessage with InvalidMessageContents and only its own entry of a
// SendMessageBatch, while the same text escaped in JSON (plain ASCII) and
// every other allowed character go through and arrive unchanged.
func TestAWSProxyRefusesWhatSQSRefuses(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	for _, fifo := range []bool{false, true} {
		url := kumotest.Queue(t, api, fifo)
		name := url[strings.LastIndexByte(url, '/')+1:]
		q := &sqs.CreateQueueOutput{QueueUrl: aws.String(url)}
		entry := func(id, body string) types.SendMessageBatchRequestEntry {
			e := types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(body)}
			if fifo {
				e.MessageGroupId, e.MessageDeduplicationId = aws.String("g"), aws.String(id)
			}
			return e
		}
		one := &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(`{"text":"a` + "\uffff" + `"}`)}
		if fifo {
			one.MessageGroupId, one.MessageDeduplicationId = aws.String("g"), aws.String("one")
		}
		_, err := api.SendMessage(ctx, one)
		var refused *types.InvalidMessageContents
		if !errors.As(err, &refused) {
			t.Errorf("%s: SendMessage with U+FFFF: %v, want InvalidMessageContents", name, err)
		}
		allowed := "tab\t nl\n cr\r é € \ufffd \U0001F600 \ud7ff \ue000 " + `{"text":"\uffff"}`
		out, err := api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []types.SendMessageBatchRequestEntry{
			entry("ok1", allowed), entry("bad1", "x\ufffe"), entry("bad2", "nul \x00"), entry("ok2", "second"), entry("bad3", "vt \v"),
		}})
		if err != nil {
			t.Fatalf("%s: SendMessageBatch: %v", name, err)
		}
		var okIDs, badIDs []string
		for _, s := range out.Successful {
			okIDs = append(okIDs, aws.ToString(s.Id))
		}
		for _, f := range out.Failed {
			badIDs = append(badIDs, aws.ToString(f.Id))
			if aws.ToString(f.Code) != "InvalidMessageContents" || !f.SenderFault {
				t.Errorf("%s: entry %s failed with %s (sender fault %v), want InvalidMessageContents, sender's fault",
					name, aws.ToString(f.Id), aws.ToString(f.Code), f.SenderFault)
			}
		}
		slices.Sort(okIDs)
		slices.Sort(badIDs)
		if !slices.Equal(okIDs, []string{"ok1", "ok2"}) || !slices.Equal(badIDs, []string{"bad1", "bad2", "bad3"}) {
			t.Errorf("%s: successful %v, failed %v; want ok1, ok2 and bad1-3", name, okIDs, badIDs)
		}
		got, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, m := range got.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		slices.Sort(bodies)
		if want := []string{"second", allowed}; !slices.Equal(bodies, want) {
			t.Errorf("%s: received %q, want %q", name, bodies, want)
		}
	}
}
