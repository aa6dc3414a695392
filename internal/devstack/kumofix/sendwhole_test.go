package kumofix_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/devstack/kumofix"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
)

// TestAWSProxyCarriesOutASendWhoseCallerWentAway: a send that reached the
// proxy is carried out, and its deduplication id remembered, even when its
// caller is gone before the answer (a worker SIGKILLed mid-publish), as at
// SQS: the same message sent again with that id (the result published by
// the worker that takes the redelivered event) is accepted and not
// delivered, also after the first copy was received and deleted.
func TestAWSProxyCarriesOutASendWhoseCallerWentAway(t *testing.T) {
	t.Parallel()
	// The proxy under test forwards to a stack's AWS endpoint (kumo behind
	// a proxy of its own), whose call counts show what reached kumo.
	a := startAWS(t)
	p, err := kumofix.Start(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	api := sqsClient(p.URL())
	ctx := t.Context()
	q := kumotest.Queue(t, api, true)

	gone, cancel := context.WithCancel(context.Background())
	cancel() // the caller is gone by the time the proxy forwards its send
	req := httptest.NewRequestWithContext(gone, http.MethodPost, "/",
		strings.NewReader(`{"QueueUrl":"`+q+`","MessageBody":"result","MessageGroupId":"g","MessageDeduplicationId":"e-1"}`))
	req.Header.Set("X-Amz-Target", "AmazonSQS.SendMessage")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	p.ServeHTTP(httptest.NewRecorder(), req)

	out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "result" {
		t.Fatalf("received %d messages, want the one sent by the caller that went away", len(out.Messages))
	}
	if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("result"),
		MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("e-1")}); err != nil {
		t.Fatalf("the same send again: %v", err)
	}
	if out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 1}); err != nil || len(out.Messages) != 0 {
		t.Errorf("after the same send again: %d messages (%v), want none: its deduplication id was sent within the window", len(out.Messages), err)
	}
	if n := a.Calls()["SQS.SendMessage"]; n != 1 {
		t.Errorf("%d sends reached kumo, want 1", n)
	}
}
