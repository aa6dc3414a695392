package sqsbatch_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

var (
	emu       *devstack.AWS
	transport = &http.Transport{MaxIdleConnsPerHost: 16}
)

func TestMain(m *testing.M) {
	var err error
	if emu, err = devstack.StartAWS(); err != nil {
		fmt.Fprintln(os.Stderr, "start kumo:", err)
		os.Exit(1)
	}
	code := m.Run()
	emu.Stop()
	transport.CloseIdleConnections()
	if code == 0 {
		// kumo's DynamoDB emulator starts a process-wide reaper at init.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper")); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func client() *sqs.Client {
	return sqs.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, func(o *sqs.Options) { o.BaseEndpoint = aws.String(emu.URL) })
}

func newQueue(t *testing.T, api *sqs.Client, fifo bool) string {
	t.Helper()
	name := fmt.Sprintf("%.40s-%08x", strings.ReplaceAll(t.Name(), "/", "-"), rand.Uint32())
	attrs := map[string]string{}
	if fifo {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	out, err := api.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func receive(t *testing.T, api *sqs.Client, url string, n int) []types.Message {
	t.Helper()
	var got []types.Message
	for len(got) < n {
		out, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			t.Fatalf("queue ran dry after %d of %d messages", len(got), n)
		}
		got = append(got, out.Messages...)
	}
	return got
}

// TestAgainstSQS: sends with FIFO fields and attributes arrive in order;
// visibility changes and deletes answer per entry, in calls of ten; a stale
// receipt handle is the sender's fault and is not retried.
func TestAgainstSQS(t *testing.T) {
	t.Parallel()
	api := client()
	fifo := sqsbatch.NewSender(api, newQueue(t, api, true), fast())
	msgs := messages(10)
	for i := range msgs {
		msgs[i].GroupID = "chat-1"
		msgs[i].DeduplicationID = fmt.Sprintf("e%d", i)
		msgs[i].Attributes = map[string]types.MessageAttributeValue{"event_id": {DataType: aws.String("String"), StringValue: aws.String(msgs[i].DeduplicationID)}}
	}
	for i, err := range fifo.Send(t.Context(), msgs) {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i, m := range receive(t, api, fifo.URL(), 10) {
		if aws.ToString(m.Body) != msgs[i].Body || aws.ToString(m.MessageAttributes["event_id"].StringValue) != msgs[i].DeduplicationID ||
			m.Attributes["MessageGroupId"] != "chat-1" {
			t.Fatalf("message %d: body %q attrs %v %v, want %q in order", i, aws.ToString(m.Body), m.MessageAttributes, m.Attributes, msgs[i].Body)
		}
	}

	std := sqsbatch.NewSender(api, newQueue(t, api, false), fast())
	for i, err := range std.Send(t.Context(), messages(12)) {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := receive(t, api, std.URL(), 12)
	changes := make([]sqsbatch.Visibility, len(got))
	handles := make([]string, len(got))
	for i, m := range got {
		changes[i] = sqsbatch.Visibility{Receipt: aws.ToString(m.ReceiptHandle), Timeout: time.Minute}
		handles[i] = aws.ToString(m.ReceiptHandle)
	}
	receipts := sqsbatch.NewReceipts(api, std.URL(), fast())
	for i, err := range receipts.ChangeVisibility(t.Context(), changes) {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	errs := receipts.Delete(t.Context(), append([]string{"not-a-receipt-handle"}, handles...))
	var e *sqsbatch.Error
	if !errors.As(errs[0], &e) || !e.SenderFault || e.Transient() || e.Attempts != 1 {
		t.Errorf("stale handle: %v, want a permanent sender fault after one attempt", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("delete %d: %v", i, err)
		}
	}
	if c, r := std.Calls(), receipts.Calls(); c.SendMessageBatch != 2 || r.ChangeMessageVisibilityBatch != 2 || r.DeleteMessageBatch != 2 || r.Total() != 4 {
		t.Errorf("calls %+v and %+v, want 2 of each (12 and 13 entries)", c, r)
	}
}
