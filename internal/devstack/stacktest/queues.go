package stacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/queues"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// This file is the test's side of its queues: what a producer sends to the
// input queue, and reading the response and dead-letter queues the way a
// consumer of the worker's output would, through the project's own
// sqsbatch (sending) and peek (receiving and deleting).

// Msg is one input queue message: a body and, for a FIFO queue, its group
// and deduplication id.
type Msg struct {
	Body         string
	Group, Dedup string
	// Attributes are sent as String message attributes (a producer's
	// traceparent).
	Attributes map[string]string
}

// Event makes the Msg `worker enqueue` would send for ev: the JSON body,
// MessageGroupId = chat_id, MessageDeduplicationId = event_id.
func Event(ev map[string]any) Msg {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	chat, _ := ev["chat_id"].(string)
	id, _ := ev["event_id"].(string)
	return Msg{Body: string(b), Group: chat, Dedup: id}
}

// Send sends msgs to e's input queue in order, through the worker's own
// batch mechanism (batches of ten keep the order of a FIFO group).
func (e *Env) Send(t testing.TB, msgs ...Msg) {
	t.Helper()
	fifo := config.IsFIFO(e.InputURL)
	out := make([]sqsbatch.Message, len(msgs))
	for i, m := range msgs {
		out[i].Body, out[i].Attributes = m.Body, sqsbatch.StringAttributes(m.Attributes)
		if fifo {
			out[i].GroupID, out[i].DeduplicationID = m.Group, m.Dedup
		}
	}
	for i, err := range sqsbatch.NewSender(e.SQS, e.InputURL, sqsbatch.Config{}).Send(t.Context(), out) {
		if err != nil {
			t.Fatalf("send event %d: %v", i, err)
		}
	}
}

// Results reads n results from e's response queue within timeout, deleting
// each, in the order SQS delivers them (contracttest.ReadResult decodes
// each). It fails the test if fewer come.
func (e *Env) Results(t testing.TB, n int, timeout time.Duration) []contracttest.Result {
	t.Helper()
	var out []contracttest.Result
	e.take(t, e.ResponseURL, "results", n, timeout, func(m types.Message) {
		out = append(out, contracttest.ReadResult(t, m))
	})
	return out
}

// NoMoreResults fails the test if a result arrives on e's response queue
// within wait.
func (e *Env) NoMoreResults(t testing.TB, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	r := peek.New(e.SQS, e.ResponseURL, 0)
	for ctx.Err() == nil {
		msgs, err := receive(ctx, r)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("receive results: %v", err)
		}
		for _, m := range msgs {
			t.Errorf("unexpected result: %s", aws.ToString(m.Body))
		}
	}
}

// DeadLetters reads n messages from e's dead-letter queue within timeout,
// deleting each.
func (e *Env) DeadLetters(t testing.TB, n int, timeout time.Duration) []contracttest.DeadLetter {
	t.Helper()
	var out []contracttest.DeadLetter
	e.take(t, e.DLQURL, "dead letters", n, timeout, func(m types.Message) {
		out = append(out, contracttest.ReadDeadLetter(m))
	})
	return out
}

// take receives n messages from the queue at url within timeout, deleting
// each and handing it to each as it comes; it fails the test if fewer come.
// what names the messages in its failures.
func (e *Env) take(t testing.TB, url, what string, n int, timeout time.Duration, each func(types.Message)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	r := peek.New(e.SQS, url, 0)
	for got := 0; got < n; {
		msgs, err := receive(ctx, r)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d %s after %v", got, n, what, timeout)
		}
		if err != nil {
			t.Fatalf("receive %s: %v", what, err)
		}
		for _, m := range msgs {
			each(m)
		}
		got += len(msgs)
	}
}

// receive makes one receive through r (up to ten messages, a one-second
// long poll) and deletes what it brought. A receive cut short by ctx still
// ends by its poll (see peek.Reader.Receive), so no message is left hidden
// in an abandoned one.
func receive(ctx context.Context, r *peek.Reader) ([]types.Message, error) {
	msgs, _, err := r.Receive(ctx, sqsbatch.MaxEntries, time.Second)
	for _, derr := range r.Delete(ctx, msgs) {
		if derr != nil {
			return msgs, fmt.Errorf("delete: %w", derr)
		}
	}
	return msgs, err
}

// QueueDepth is the number of messages in a queue, visible or in flight
// (Depth; a failure fails t).
func (e *Env) QueueDepth(t testing.TB, url string) int {
	t.Helper()
	n, err := Depth(t.Context(), e.SQS, url)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Depth is a queue's ApproximateNumberOfMessages plus
// ApproximateNumberOfMessagesNotVisible. (kumo counts a message whose
// visibility ran out as not visible until the next receive puts it back.)
func Depth(ctx context.Context, api *sqs.Client, url string) (int, error) {
	c, err := queues.CountMessages(ctx, api, url)
	return c.Total(), err
}
