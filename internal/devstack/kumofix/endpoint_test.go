package kumofix_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
)

// TestAWSProxyEndpointFaultsAreItsOwn: a fault set on one endpoint fails
// the calls made through it and no other (not URL's, not another
// endpoint's), and URL's fault does not reach an endpoint; what is sent
// through one endpoint is received through another, with its FIFO
// attributes (the proxy's state is shared); calls through every endpoint
// are counted; a closed endpoint refuses connections, and the proxy's
// Close stops the endpoints still open.
func TestAWSProxyEndpointFaultsAreItsOwn(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	e1, err := a.NewEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	e2, err := a.NewEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	// e2 is left open: the proxy's Close stops it (goleak checks, in TestMain).
	if e1.URL() == e2.URL() || e1.URL() == a.URL || e1.URL() == a.UnfaultedURL() {
		t.Fatalf("endpoints share an address: %s %s %s %s", e1.URL(), e2.URL(), a.URL, a.UnfaultedURL())
	}
	main, one, two := sqsClient(a.URL), sqsClient(e1.URL()), sqsClient(e2.URL())
	q := aws.String(kumotest.Queue(t, main, true))
	send := func(api *sqs.Client, body string) error {
		_, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q, MessageBody: aws.String(body),
			MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String(body)})
		return err
	}

	e1.SetFault(func(string) devstack.Fault { return devstack.Fault{Status: 503, Code: "ServiceUnavailable"} })
	if err := send(one, "a"); err == nil {
		t.Error("the faulted endpoint accepted a send")
	}
	if err := send(two, "b"); err != nil {
		t.Errorf("another endpoint, during the first's fault: %v", err)
	}
	if err := send(main, "c"); err != nil {
		t.Errorf("URL, during an endpoint's fault: %v", err)
	}
	e1.SetFault(nil)
	a.SetFault(func(string) devstack.Fault { return devstack.Fault{Drop: true} })
	if err := send(one, "d"); err != nil {
		t.Errorf("an endpoint, during URL's fault: %v", err)
	}
	a.SetFault(nil)

	var bodies []string
	for len(bodies) < 3 {
		out, err := one.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			if m.Attributes["MessageGroupId"] != "g" {
				t.Errorf("message %q received without its group: %v", aws.ToString(m.Body), m.Attributes)
			}
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := one.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{"b", "c", "d"}; len(bodies) != 3 || bodies[0] != want[0] || bodies[1] != want[1] || bodies[2] != want[2] {
		t.Errorf("received %q through an endpoint, want %q", bodies, want)
	}
	if n := a.Calls()["SQS.SendMessage"]; n != 4 {
		t.Errorf("SendMessage calls = %d, want 4 (every endpoint counts)", n)
	}

	e1.Close()
	if err := send(one, "e"); err == nil {
		t.Error("a closed endpoint took a send")
	}
}
