// Package sqsbatchtest has test doubles of the SQS batch calls, for
// benchmarks that measure the worker's own cost without an SQS behind it.
package sqsbatchtest

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// Accepting is an SQS that accepts every entry of every batch call at once
// and counts the calls.
type Accepting struct {
	Calls atomic.Int64
}

var _ sqsbatch.API = (*Accepting)(nil)

// SendMessageBatch accepts every entry.
func (a *Accepting) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	a.Calls.Add(1)
	out := &sqs.SendMessageBatchOutput{Successful: make([]types.SendMessageBatchResultEntry, len(in.Entries))}
	for i, e := range in.Entries {
		out.Successful[i] = types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))}
	}
	return out, nil
}

// DeleteMessageBatch accepts every entry.
func (a *Accepting) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	a.Calls.Add(1)
	out := &sqs.DeleteMessageBatchOutput{Successful: make([]types.DeleteMessageBatchResultEntry, len(in.Entries))}
	for i, e := range in.Entries {
		out.Successful[i] = types.DeleteMessageBatchResultEntry{Id: e.Id}
	}
	return out, nil
}

// ChangeMessageVisibilityBatch accepts every entry.
func (a *Accepting) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	a.Calls.Add(1)
	out := &sqs.ChangeMessageVisibilityBatchOutput{Successful: make([]types.ChangeMessageVisibilityBatchResultEntry, len(in.Entries))}
	for i, e := range in.Entries {
		out.Successful[i] = types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id}
	}
	return out, nil
}
