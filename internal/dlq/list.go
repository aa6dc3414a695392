package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/peek"
)

// DefaultListMax is how many dead letters `worker dlq list` prints when not
// told.
const DefaultListMax = 10

// Letter is one dead letter as `worker dlq list` prints it (CONTRACT.md).
type Letter struct {
	MessageID string `json:"message_id"`
	// ErrorCode and Error are the worker's reason; empty (and left out of
	// the JSON) when the queue's redrive policy moved the message.
	ErrorCode string `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
	// ReceiveCount is SQS's ApproximateReceiveCount, the listing's own
	// receive included.
	ReceiveCount int `json:"receive_count"`
	// SentAt is SQS's SentTimestamp, to the millisecond, UTC.
	SentAt time.Time `json:"sent_at"`
	// Body is the message body as it is (not decoded: it may be no JSON).
	Body string `json:"body"`
}

// LetterOf reads a received dead letter.
func LetterOf(m types.Message) Letter {
	msg := handler.FromSQS(m, time.Time{})
	return Letter{
		MessageID:    msg.ID,
		ErrorCode:    msg.Attributes[AttrErrorCode],
		Error:        msg.Attributes[AttrError],
		ReceiveCount: msg.ReceiveCount,
		SentAt:       msg.SentAt,
		Body:         msg.Body,
	}
}

// List prints up to max dead letters of the queue r reads to out, one JSON
// object (Letter) a line, in the order SQS hands them out, and then gives
// every one back, receivable again at once. It returns how many it printed.
// On a FIFO queue it sees at most the first messages of each group that one
// receive returns (see package peek).
func List(ctx context.Context, r *peek.Reader, max int, out io.Writer) (int, error) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // the body as it is: <, > and & stay themselves
	n := 0
	err := r.Read(ctx, max, peek.DrainWait, func(msgs []types.Message) error {
		for _, m := range msgs {
			if err := enc.Encode(LetterOf(m)); err != nil {
				return fmt.Errorf("print dead letter: %w", err)
			}
			n++
		}
		return nil
	})
	if rerr := r.Release(ctx); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return n, err
}

func attr(m types.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}
