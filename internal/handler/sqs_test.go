package handler_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/handler"
)

func TestFromSQS(t *testing.T) {
	received := time.Now()
	m := handler.FromSQS(types.Message{
		MessageId: aws.String("m-1"),
		Body:      aws.String(`{"x":1}`),
		Attributes: map[string]string{
			"ApproximateReceiveCount": "3",
			"SentTimestamp":           "1764590400123",
			"MessageGroupId":          "chat-1",
		},
		MessageAttributes: map[string]types.MessageAttributeValue{
			"traceparent": {DataType: aws.String("String"), StringValue: aws.String("00-abc")},
			"price":       {DataType: aws.String("Number.eur"), StringValue: aws.String("1.5")},
			"blob":        {DataType: aws.String("Binary"), BinaryValue: []byte{1}},
		},
	}, received)
	if m.ID != "m-1" || m.Body != `{"x":1}` || m.GroupID != "chat-1" || m.ReceiveCount != 3 || !m.ReceivedAt.Equal(received) {
		t.Fatalf("FromSQS = %+v", m)
	}
	if want := time.UnixMilli(1764590400123).UTC(); !m.SentAt.Equal(want) || m.SentAt.Location() != time.UTC {
		t.Errorf("SentAt = %v, want %v in UTC", m.SentAt, want)
	}
	if len(m.Attributes) != 2 || m.Attributes["price"] != "1.5" || m.AttributeTypes["price"] != "Number.eur" {
		t.Errorf("attributes %v, types %v: want the string and number ones with their types, no binary", m.Attributes, m.AttributeTypes)
	}
	if _, ok := m.Attributes["blob"]; ok {
		t.Error("a binary attribute was kept")
	}
}

func TestFromSQSWithoutSystemAttributes(t *testing.T) {
	m := handler.FromSQS(types.Message{MessageId: aws.String("m-2")}, time.Time{})
	if m.ReceiveCount != 0 || !m.SentAt.IsZero() || m.Attributes != nil || m.QueueWait() != 0 {
		t.Errorf("FromSQS without attributes = %+v", m)
	}
}

// TestFromSQSFirstSentAt: a message's FirstSentAt is its SentTimestamp,
// unless it is a copy that carries the original's (AttrFirstSent).
func TestFromSQSFirstSentAt(t *testing.T) {
	sent := map[string]string{"SentTimestamp": "1764590400123"}
	m := handler.FromSQS(types.Message{Attributes: sent}, time.Time{})
	if !m.FirstSentAt.Equal(m.SentAt) || m.FirstSentAt.IsZero() {
		t.Errorf("original: FirstSentAt %v, want SentAt %v", m.FirstSentAt, m.SentAt)
	}
	for attr, want := range map[string]time.Time{
		"1764500000000": time.UnixMilli(1764500000000).UTC(),
		"not a number":  time.UnixMilli(1764590400123).UTC(),
		"-5":            time.UnixMilli(1764590400123).UTC(),
	} {
		m := handler.FromSQS(types.Message{Attributes: sent, MessageAttributes: map[string]types.MessageAttributeValue{
			handler.AttrFirstSent: {DataType: aws.String("Number"), StringValue: aws.String(attr)},
		}}, time.Time{})
		if !m.FirstSentAt.Equal(want) {
			t.Errorf("%s = %q: FirstSentAt %v, want %v", handler.AttrFirstSent, attr, m.FirstSentAt, want)
		}
	}
}
