package kumofix_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
)

// TestAWSProxyLongPollReturnsWhenAMessageBecomesReceivable: on SQS a long
// poll returns as soon as a message can be received, also when that is
// because the FIFO group's message in flight was deleted or a visibility
// timeout ended, not only because a message was sent (kumo alone waits out
// the whole poll then). Not parallel: kumo.NewServer races with itself
// across parallel tests (its state is process-wide).
func TestAWSProxyLongPollReturnsWhenAMessageBecomesReceivable(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(kumotest.Queue(t, api, true))} // a name of its own: -count=N reuses kumo's process-wide state
	for _, body := range []string{"first", "second"} {
		if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(body),
			MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// receive long-polls for one message; its body is "" when none came.
	receive := func(visibility int32) (types.Message, time.Duration, error) {
		start := time.Now()
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 1,
			WaitTimeSeconds: 20, VisibilityTimeout: visibility,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil || len(out.Messages) == 0 {
			return types.Message{}, time.Since(start), err
		}
		return out.Messages[0], time.Since(start), nil
	}

	first, _, err := receive(30)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.Body) != "first" {
		t.Fatalf("received %q first", aws.ToString(first.Body))
	}
	// "second" is blocked behind "first" (same group) until "first" is
	// deleted, well after this long poll began.
	type got struct {
		m       types.Message
		elapsed time.Duration
		err     error
	}
	next := make(chan got, 1)
	go func() {
		m, d, err := receive(1)
		next <- got{m, d, err}
	}()
	// Delete once the poll reached the proxy: it must be woken, not find
	// the message at once.
	for a.Calls()["SQS.ReceiveMessage"] < 2 {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: first.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	g := <-next
	if g.err != nil {
		t.Fatal(g.err)
	}
	if aws.ToString(g.m.Body) != "second" || g.elapsed > 5*time.Second {
		t.Errorf("after the delete the poll returned %q after %v; want second within seconds, not the 20s poll", aws.ToString(g.m.Body), g.elapsed)
	}
	if g.m.Attributes["MessageGroupId"] != "g" || g.m.Attributes["MessageDeduplicationId"] != "second" {
		t.Errorf("FIFO attributes %v", g.m.Attributes)
	}

	// "second" was received with a 1s visibility timeout and not deleted:
	// the next poll gets it again once the timeout ends.
	again, elapsed, err := receive(30)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.Body) != "second" || elapsed > 5*time.Second {
		t.Errorf("after the visibility timeout the poll returned %q after %v; want second within seconds", aws.ToString(again.Body), elapsed)
	}
}

// TestAWSProxyKeepsFIFOGroupOrder: messages of a FIFO group released back to
// the queue (visibility 0, as a worker does with the rest of a group after
// one of its messages failed) come back in the order they were sent, as on
// SQS; kumo alone puts them back in map order. Not parallel (see above).
func TestAWSProxyKeepsFIFOGroupOrder(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(kumotest.Queue(t, api, true))} // a name of its own: -count=N reuses kumo's process-wide state
	var want []string
	for i := range 8 {
		body := fmt.Sprintf("m%d", i)
		want = append(want, body)
		if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(body),
			MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	receiveAll := func() []types.Message {
		t.Helper()
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	bodies := func(msgs []types.Message) []string {
		var out []string
		for _, m := range msgs {
			out = append(out, aws.ToString(m.Body))
		}
		return out
	}
	for round := range 3 {
		msgs := receiveAll()
		if got := bodies(msgs); !slices.Equal(got, want) {
			t.Fatalf("round %d: received %v, want %v", round, got, want)
		}
		for _, m := range msgs {
			if _, err := api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl,
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestAWSProxyCancelledLongPollStrandsWhatArrives: as at SQS, a long poll
// whose request was cancelled stays open until its wait is over, and a
// message sent meanwhile is delivered into it, to no one: invisible for its
// visibility timeout, then back with one receive more. Not parallel (kumo's
// state is process-wide).
func TestAWSProxyCancelledLongPollStrandsWhatArrives(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(kumotest.Queue(t, api, false))} // a name of its own: -count=N reuses kumo's process-wide state
	pollCtx, cancel := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() {
		_, err := api.ReceiveMessage(pollCtx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 5, VisibilityTimeout: 2})
		polled <- err
	}()
	for a.Calls()["SQS.ReceiveMessage"] == 0 { // the poll is waiting at the proxy
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // a SIGTERM that cancels the poll in flight
	if err := <-polled; err == nil {
		t.Fatal("the cancelled poll answered")
	}
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("late")}); err != nil {
		t.Fatal(err)
	}
	for a.Stranded() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 0})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("right after: %d messages (%v), want the stranded one invisible", len(out.Messages), err)
	}
	out, err = api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil || len(out.Messages) != 1 || out.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("after its visibility timeout: %+v (%v), want it back with receive count 2", out.Messages, err)
	}
}
