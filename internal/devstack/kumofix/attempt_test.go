package kumofix_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
)

// TestAWSProxyReceiveRequestAttemptId: a FIFO receive retried with the
// attempt id of one that took messages gets the same messages and receipt
// handles, as at SQS (kumo alone takes new ones and leaves the first
// answer's hidden); another attempt id gets what is left, and a standard
// queue's receives ignore the id.
func TestAWSProxyReceiveRequestAttemptId(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := kumotest.Queue(t, api, true)
	for i, body := range []string{"a", "b", "c"} {
		if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(body),
			MessageGroupId: aws.String("g" + body), MessageDeduplicationId: aws.String(body + string(rune('0'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(q, attempt string, n int32) []types.Message {
		t.Helper()
		in := &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: n, VisibilityTimeout: 60, WaitTimeSeconds: 1}
		if attempt != "" {
			in.ReceiveRequestAttemptId = aws.String(attempt)
		}
		out, err := api.ReceiveMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	ids := func(ms []types.Message) (out []string) {
		for _, m := range ms {
			out = append(out, aws.ToString(m.MessageId)+" "+aws.ToString(m.ReceiptHandle))
		}
		return out
	}
	first := receive(q, "attempt-1", 2)
	if len(first) != 2 {
		t.Fatalf("first receive: %d messages, want 2", len(first))
	}
	if again := receive(q, "attempt-1", 2); !slices.Equal(ids(again), ids(first)) {
		t.Errorf("retried with the same attempt id: %v, want the first answer %v", ids(again), ids(first))
	}
	if other := receive(q, "attempt-2", 10); len(other) != 1 {
		t.Errorf("another attempt id: %d messages, want the one left", len(other))
	}

	std := kumotest.Queue(t, api, false)
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(std), MessageBody: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if got := receive(std, "attempt-1", 1); len(got) != 1 {
		t.Fatalf("standard queue: %d messages, want 1", len(got))
	}
	if got := receive(std, "attempt-1", 1); len(got) != 0 {
		t.Errorf("standard queue, same attempt id: %d messages, want none (SQS ignores the id there)", len(got))
	}
}
