package dlq_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// emu is kumo behind the devstack proxy, which returns the FIFO system
// attributes on ReceiveMessage as SQS does.
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
	}, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(emu.URL)
		o.DisableMessageChecksumValidation = true // kumo and re-sent deduplication ids (LOCAL-STACK.md)
	})
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// newQueue creates a queue named after the test.
func newQueue(t *testing.T, api *sqs.Client, suffix string, fifo bool) string {
	t.Helper()
	name := fmt.Sprintf("%.40s-%s-%06x", unsafe.ReplaceAllString(t.Name(), "-"), suffix, rand.Uint32()&0xffffff)
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

// letter is a dead letter to put in a test's dead-letter queue.
type letter struct {
	body, group string
	attrs       map[string]string
}

func put(t *testing.T, api *sqs.Client, url string, fifo bool, letters ...letter) {
	t.Helper()
	msgs := make([]sqsbatch.Message, len(letters))
	for i, l := range letters {
		msgs[i].Body = l.body
		if len(l.attrs) > 0 {
			msgs[i].Attributes = map[string]types.MessageAttributeValue{}
			for k, v := range l.attrs {
				msgs[i].Attributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
		}
		if fifo {
			msgs[i].GroupID, msgs[i].DeduplicationID = l.group, fmt.Sprintf("d-%d-%06x", i, rand.Uint32()&0xffffff)
		}
	}
	for i, err := range sqsbatch.NewSender(api, url, sqsbatch.Config{}).Send(t.Context(), msgs) {
		if err != nil {
			t.Fatalf("put %s: %v", letters[i].body, err)
		}
	}
}

// got is a message read back from a queue.
type got struct {
	id, body, group, dedup string
	attrs                  map[string]string
}

// takeAll receives and deletes every message receivable now (short polls
// until one brings nothing), in the order SQS hands them out.
func takeAll(t *testing.T, api *sqs.Client, url string) []got {
	t.Helper()
	var out []got
	for {
		res, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 30,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			g := got{id: aws.ToString(m.MessageId), body: aws.ToString(m.Body), group: m.Attributes["MessageGroupId"],
				dedup: m.Attributes["MessageDeduplicationId"], attrs: map[string]string{}}
			for k, v := range m.MessageAttributes {
				g.attrs[k] = aws.ToString(v.StringValue)
			}
			out = append(out, g)
			if _, err := api.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
