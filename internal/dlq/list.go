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

	"github.com/chatprep/chatprep/internal/event"
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
	// Invalid, on a message without error_code, says why its body is not
	// a valid event, by the worker's own validator (event.Decode); absent
	// when it is valid or has an error_code. An invalid event reaches the
	// dead-letter queue this way when the worker's own move kept failing
	// (the dead-letter queue throttled or down) until the redrive policy
	// moved it.
	Invalid *Reason `json:"invalid,omitempty"`
	// Body is the message body as it is (not decoded: it may be no JSON).
	Body string `json:"body"`
}

// Reason is why a body is not a valid event.
type Reason struct {
	Code  string `json:"error_code"` // an event.Code* constant
	Error string `json:"error"`
}

// LetterOf reads a received dead letter.
func LetterOf(m types.Message) Letter {
	msg := handler.FromSQS(m, time.Time{})
	l := Letter{
		MessageID:    msg.ID,
		ErrorCode:    msg.Attributes[AttrErrorCode],
		Error:        msg.Attributes[AttrError],
		ReceiveCount: msg.ReceiveCount,
		SentAt:       msg.SentAt,
		Body:         msg.Body,
	}
	if l.ErrorCode == "" {
		l.Invalid = Check(msg.Body)
	}
	return l
}

// Check is why body is not a valid event (event.Decode, the one
// validator), nil when it is one.
func Check(body string) *Reason {
	_, err := event.Decode([]byte(body))
	if err == nil {
		return nil
	}
	r := &Reason{Code: event.CodeNotJSON, Error: err.Error()}
	var inv *event.Invalid
	if errors.As(err, &inv) {
		r.Code = inv.Code
	}
	return r
}

// invalid tells whether a dead letter is an invalid event: it has an
// error_code (the worker moved it), or its body is not a valid event.
func invalid(m types.Message) bool {
	return attr(m, AttrErrorCode) != "" || Check(aws.ToString(m.Body)) != nil
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
