package handler

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AttrFirstSent is the message attribute (type Number) a copy of a message
// carries when it is sent again to the queue it came from (`worker dlq
// redrive`): when SQS first received the original, in milliseconds since
// the epoch, as SentTimestamp says. The copy's own SentTimestamp is the
// time of the copy.
const AttrFirstSent = "first_sent_timestamp"

// FromSQS reads a message SQS delivered at receivedAt (asked for with all
// system and message attributes). Binary message attributes are dropped.
func FromSQS(m types.Message, receivedAt time.Time) Message {
	msg := Message{
		ID:               aws.ToString(m.MessageId),
		Body:             aws.ToString(m.Body),
		GroupID:          m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
		SentAt:           SentAt(m),
		ReceivedAt:       receivedAt,
		SystemAttributes: m.Attributes,
	}
	msg.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	msg.FirstSentAt = msg.SentAt
	if v := m.MessageAttributes[AttrFirstSent].StringValue; v != nil {
		if ms, err := strconv.ParseInt(*v, 10, 64); err == nil && ms > 0 {
			msg.FirstSentAt = time.UnixMilli(ms).UTC()
		}
	}
	for k, v := range m.MessageAttributes {
		if v.StringValue == nil {
			continue // binary
		}
		if msg.Attributes == nil {
			msg.Attributes = make(map[string]string, len(m.MessageAttributes))
			msg.AttributeTypes = make(map[string]string, len(m.MessageAttributes))
		}
		msg.Attributes[k] = *v.StringValue
		msg.AttributeTypes[k] = aws.ToString(v.DataType)
	}
	return msg
}

// SentAt is a received message's SentTimestamp, in UTC (zero when SQS gave
// none).
func SentAt(m types.Message) time.Time {
	ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
