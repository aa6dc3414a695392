package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// jitter returns a duration drawn uniformly from [d/2, d] ("equal jitter"),
// so that workers failing together do not retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// expBackoff is base·2^attempt, capped at maximum (attempt counts from 0).
func expBackoff(base, maximum time.Duration, attempt int) time.Duration {
	d := base
	for range attempt {
		if d >= maximum/2 {
			return maximum
		}
		d *= 2
	}
	return min(d, maximum)
}

// failureVisibility is the visibility, in whole seconds, a failed message is
// given: RetryBackoff doubled for each receive after the first, jittered,
// capped by RetryBackoffMax and by what remains of SQS's 12-hour cap.
func failureVisibility(cfg Config, receiveCount int, remaining time.Duration) int32 {
	d := jitter(expBackoff(cfg.RetryBackoff, cfg.RetryBackoffMax, max(receiveCount-1, 0)))
	d = min(d, remaining)
	secs := int32((d + time.Second - 1) / time.Second) // round up: never 0 for a real back-off
	return max(secs, 0)
}

// sleep waits d or until ctx is done; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Codes of throttling errors, which are client faults worth retrying.
var throttleCodes = map[string]bool{
	(&types.RequestThrottled{}).ErrorCode(): true,
	(&types.KmsThrottled{}).ErrorCode():     true,
	"ThrottlingException":                   true,
	"Throttling":                            true,
}

// retryable tells whether an SQS call's error may go away by itself:
// throttling, server faults and transport errors (connection reset, timeout).
// A client fault (invalid handle, missing queue, bad request) will not.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true // transport-level: connection reset, timeout, DNS
	}
	if throttleCodes[apiErr.ErrorCode()] {
		return true
	}
	return apiErr.ErrorFault() != smithy.FaultClient
}

// entryFatal tells whether a failed entry of a batch call will fail again if
// retried: a sender fault other than throttling. For a receipt handle that
// can no longer be used SQS answers ReceiptHandleIsInvalid (a stale handle),
// MessageNotInflight or InvalidParameterValue ("not available for visibility
// timeout change", the visibility ran out): all sender faults, so this does
// not depend on which code a given SQS (or emulator) picks. Server faults
// are worth a retry.
func entryFatal(e types.BatchResultErrorEntry) bool {
	if e.Code != nil && throttleCodes[*e.Code] {
		return false
	}
	return e.SenderFault
}
