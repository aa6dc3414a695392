// Package sqsfake has the consumer's fake of SQS, for unit tests of its
// logic that must run in virtual time (testing/synctest), where no socket to
// kumo can be held:
//
//   - SQS is a hand-written fake of the calls the consumer makes
//     (consumer.SQSAPI): a function field per method, in the manner of
//     Litestream's mock package and of metrics/cwfake, for tests that only
//     need to see or steer the calls.
//   - Queue is an in-memory standard queue behind an SQS: long polls,
//     visibility timeouts counted from the answer, receipt handles that go
//     stale when a message is received again, receive counts. Its clock is
//     the process's (a synctest bubble's virtual one), so a test of the
//     consumer's timing — lease extension, a late long poll, back-offs —
//     waits no real time.
//
// The consumer's tests against kumo (through the real aws-sdk-go-v2) remain
// the tests of the real path; this package stands in only where the point is
// the consumer's own timing. It does not import the consumer, so the
// consumer's internal tests can use it too; the compile-time check against
// consumer.SQSAPI is in the consumer's tests.
package sqsfake

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

var _ sqsbatch.ReceiptAPI = (*SQS)(nil)

// SQS answers each call with its function field. A nil
// ReceiveMessageFunc answers as an empty queue does: after the poll's
// WaitTimeSeconds (at once for 0), or ctx's error first; the other nil
// fields answer an empty success.
type SQS struct {
	// ReceiveMessageFunc answers ReceiveMessage.
	ReceiveMessageFunc func(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	// DeleteMessageBatchFunc answers DeleteMessageBatch.
	DeleteMessageBatchFunc func(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	// ChangeMessageVisibilityBatchFunc answers ChangeMessageVisibilityBatch.
	ChangeMessageVisibilityBatchFunc func(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// ReceiveMessage calls ReceiveMessageFunc.
func (s *SQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if s.ReceiveMessageFunc == nil {
		if !backoff.Sleep(ctx, seconds(in.WaitTimeSeconds)) {
			return nil, ctx.Err()
		}
		return &sqs.ReceiveMessageOutput{}, nil
	}
	return s.ReceiveMessageFunc(ctx, in, optFns...)
}

// DeleteMessageBatch calls DeleteMessageBatchFunc.
func (s *SQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if s.DeleteMessageBatchFunc == nil {
		return &sqs.DeleteMessageBatchOutput{}, nil
	}
	return s.DeleteMessageBatchFunc(ctx, in, optFns...)
}

// ChangeMessageVisibilityBatch calls ChangeMessageVisibilityBatchFunc.
func (s *SQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if s.ChangeMessageVisibilityBatchFunc == nil {
		return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
	}
	return s.ChangeMessageVisibilityBatchFunc(ctx, in, optFns...)
}
