package sqsfake_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/consumer/sqsfake"
)

// The queue behaves as SQS does where the consumer's timing depends on it:
// a long poll waits for a message and returns it as soon as it is sent; its
// visibility timeout runs from the answer; a message whose timeout ran out
// is received again with a new receipt handle, the old one refused; an
// extension keeps it hidden; a visibility of 0 gives it back at once.
func TestQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		q := sqsfake.NewQueue()
		receive := func(wait, vis int32) []types.Message {
			t.Helper()
			out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10, WaitTimeSeconds: wait, VisibilityTimeout: vis})
			if err != nil {
				t.Fatal(err)
			}
			return out.Messages
		}

		start := time.Now()
		if got := receive(5, 2); len(got) != 0 || time.Since(start) != 5*time.Second {
			t.Fatalf("empty queue: %d messages after %v, want none after the 5s poll", len(got), time.Since(start))
		}

		// A long poll answered by a send 3s in.
		go func() {
			time.Sleep(3 * time.Second)
			q.Send("a")
		}()
		start = time.Now()
		got := receive(10, 2)
		if len(got) != 1 || time.Since(start) != 3*time.Second || got[0].Attributes["ApproximateReceiveCount"] != "1" {
			t.Fatalf("long poll: %v after %v, want message a after 3s, receive count 1", got, time.Since(start))
		}
		first := aws.ToString(got[0].ReceiptHandle)

		// Hidden for the 2s from the answer, then received again.
		time.Sleep(1999 * time.Millisecond)
		if v, f := q.Depth(); v != 0 || f != 1 {
			t.Fatalf("before its timeout: %d visible, %d in flight", v, f)
		}
		start = time.Now()
		got = receive(5, 2)
		if len(got) != 1 || time.Since(start) != time.Millisecond || got[0].Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("after its timeout: %v after %v, want it again 1ms later, receive count 2", got, time.Since(start))
		}
		second := aws.ToString(got[0].ReceiptHandle)

		// The old receipt handle is refused; the new one extends.
		ch, _ := q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("old"), ReceiptHandle: aws.String(first), VisibilityTimeout: 60},
			{Id: aws.String("new"), ReceiptHandle: aws.String(second), VisibilityTimeout: 10},
		}})
		if len(ch.Failed) != 1 || aws.ToString(ch.Failed[0].Id) != "old" || len(ch.Successful) != 1 {
			t.Fatalf("extension: %+v, want the old handle refused and the new one taken", ch)
		}
		time.Sleep(5 * time.Second)
		if got := receive(0, 2); len(got) != 0 {
			t.Fatalf("received while extended: %v", got)
		}

		// Visibility 0: back at once, to a poll already waiting.
		go func() {
			time.Sleep(time.Second)
			_, _ = q.ChangeMessageVisibilityBatch(context.Background(), &sqs.ChangeMessageVisibilityBatchInput{Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
				{Id: aws.String("r"), ReceiptHandle: aws.String(second), VisibilityTimeout: 0},
			}})
		}()
		start = time.Now()
		got = receive(20, 2)
		if len(got) != 1 || time.Since(start) != time.Second {
			t.Fatalf("released: %v after %v, want it after 1s", got, time.Since(start))
		}

		// Deleted with its latest handle only.
		del, _ := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("stale"), ReceiptHandle: aws.String(second)},
			{Id: aws.String("latest"), ReceiptHandle: got[0].ReceiptHandle},
		}})
		if len(del.Failed) != 1 || aws.ToString(del.Failed[0].Id) != "stale" || len(del.Successful) != 1 {
			t.Fatalf("delete: %+v, want the stale handle refused and the latest taken", del)
		}
		if v, f := q.Depth(); v+f != 0 {
			t.Fatalf("after the delete: %d visible, %d in flight", v, f)
		}
	})
}
