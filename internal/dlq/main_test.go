package dlq_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

func client() *sqs.Client { return kumotest.Client() }

// letter is a dead letter to put in a test's dead-letter queue.
type letter struct {
	body, group string
	attrs       map[string]string
}

func put(t *testing.T, api *sqs.Client, url string, fifo bool, letters ...letter) {
	t.Helper()
	msgs := make([]sqsbatch.Message, len(letters))
	for i, l := range letters {
		msgs[i].Body, msgs[i].Attributes = l.body, sqsbatch.StringAttributes(l.attrs)
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

// eventBody is a valid event named name: the dead letter of a valid event.
func eventBody(name string) string {
	return fmt.Sprintf(`{"event_id":%q,"chat_id":"c","type":"unmute"}`, name)
}

// got is a message read back from a queue; name is its event_id when its
// body is a valid event (eventBody), else its body.
type got struct {
	id, body, name, group, dedup string
	attrs                        map[string]string
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
			g.name = g.body
			if ev, err := event.Decode([]byte(g.body)); err == nil {
				g.name = ev.EventID
			}
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
