package sqsbatch_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

func client() *sqs.Client { return kumotest.Client() }

func newQueue(t *testing.T, api *sqs.Client, fifo bool) string { return kumotest.Queue(t, api, fifo) }

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
