// Package dlq is the input queue's dead-letter queue as chatprep uses it:
// poison messages go in with the reason (Put); operators list them (List,
// `worker dlq list`) and move them back (Redriver, `worker dlq redrive`).
//
// A message moved here by the worker keeps its body untouched and its
// string and number message attributes, with their types (binary ones are
// not kept; of more than eight, those first in name order, with the trace
// context first of all: SQS takes ten), and gains two: error_code (machine-readable, like
// not_json) and error (what is wrong, at most MaxErrorAttrLen bytes). A
// message moved here by the queue's redrive policy (MAX_RECEIVE_COUNT
// receives) has neither; that is how a valid event gets here (its store or
// publish kept failing), and how an invalid one can (the worker's own move
// kept failing). Listing and redriving check such bodies with the worker's
// validator (Check): an invalid event is still shown as such and skipped.
//
// Listing and redriving read the queue through package peek: what they do
// not move they give back, receivable again at once. SQS's own redrive
// (StartMessageMoveTask) is not used: it moves the whole queue with no
// filter, so it would send invalid events straight back, and emulators may
// lack it.
package dlq

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// Attribute names of a dead-lettered message.
const (
	AttrErrorCode = "error_code"
	AttrError     = "error"
)

// MaxErrorAttrLen bounds the error attribute, in bytes.
const MaxErrorAttrLen = 1024

// DefaultGroupID is the MessageGroupId of a dead letter on a FIFO queue
// whose message had none.
const DefaultGroupID = "poison"

// SQSAPI is the SQS call a dead-letter move makes (dlq.New's caller gives
// it to sqsbatch.NewSender).
type SQSAPI interface{ sqsbatch.SendAPI }

// Sender is the call Put makes (sqsbatch.Sender implements it).
type Sender interface {
	Send(ctx context.Context, msgs []sqsbatch.Message) []error
}

// Queue is the dead-letter queue.
type Queue struct {
	q    Sender
	fifo bool
}

// New returns the dead-letter queue that q sends to; fifo says it is a
// FIFO queue.
func New(q Sender, fifo bool) *Queue { return &Queue{q: q, fifo: fifo} }

// Put sends m to the dead-letter queue with error_code and error, and
// returns once SQS accepted it. On a FIFO queue the message keeps its group
// and its message id is the deduplication id, so a retried Put leaves one
// copy.
func (d *Queue) Put(ctx context.Context, m *handler.Message, code, reason string) error {
	code = AttrText(cmp.Or(code, "poison"), MaxErrorAttrLen)
	reason = AttrText(cmp.Or(reason, code), MaxErrorAttrLen)
	attrs := make(map[string]types.MessageAttributeValue, len(m.Attributes)+2)
	for k, v := range m.Attributes {
		if k == AttrErrorCode || k == AttrError || v == "" {
			continue
		}
		attrs[k] = types.MessageAttributeValue{DataType: aws.String(cmp.Or(m.AttributeTypes[k], "String")), StringValue: aws.String(v)}
	}
	attrs = capAttributes(attrs, 2)
	attrs[AttrErrorCode] = sqsbatch.StringAttribute(code)
	attrs[AttrError] = sqsbatch.StringAttribute(reason)
	msg := sqsbatch.Message{Body: m.Body, Attributes: attrs}
	if d.fifo {
		msg.GroupID = cmp.Or(m.GroupID, DefaultGroupID)
		msg.DeduplicationID = m.ID
	}
	if err := d.q.Send(ctx, []sqsbatch.Message{msg})[0]; err != nil {
		return fmt.Errorf("move message %s to the dead-letter queue: %w", m.ID, err)
	}
	return nil
}

// AttrText makes s fit for an SQS message attribute value: valid UTF-8 of
// the characters SQS allows, at most limit bytes (cut at a rune boundary,
// marked with "…").
func AttrText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if sqsbatch.Allowed(r) {
			return r
		}
		return '\uFFFD'
	}, s)
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	i := max(limit-len(ellipsis), 0)
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + ellipsis
}

// maxAttributes is SQS's limit of message attributes per message.
const maxAttributes = 10

// keptFirst are the attributes a copy keeps before any other: the trace
// context, which ties the copy to the original's trace, and when the
// original was first sent.
var keptFirst = []string{"traceparent", "tracestate", handler.AttrFirstSent}

// capAttributes returns attrs with at most maxAttributes-room of them: the
// trace context first, then the others in name order.
func capAttributes(attrs map[string]types.MessageAttributeValue, room int) map[string]types.MessageAttributeValue {
	limit := maxAttributes - room
	if len(attrs) <= limit {
		return attrs
	}
	names := slices.Sorted(maps.Keys(attrs))
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(boolInt(!slices.Contains(keptFirst, a)), boolInt(!slices.Contains(keptFirst, b)))
	})
	out := make(map[string]types.MessageAttributeValue, limit+room)
	for _, n := range names[:limit] {
		out[n] = attrs[n]
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
