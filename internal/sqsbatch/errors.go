package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// CodeNotAnswered is the Code of an entry SQS's answer did not mention.
const CodeNotAnswered = "NotAnswered"

// Error is the outcome of an entry that failed: SQS refused it (Code,
// Message, SenderFault from the answer's Failed list), or the whole call
// failed (Err).
type Error struct {
	Op          string // the SQS call, e.g. "SendMessageBatch"
	Queue       string // the queue's name
	Attempts    int    // calls made for the entry
	Code        string // the Failed entry's code; empty when the call failed
	Message     string
	SenderFault bool
	Err         error // the call's error (or the context's), if any
}

// Error reads like "SendMessageBatch on chat-context.fifo: entry refused
// (sender's fault): InvalidParameterValue: …".
func (e *Error) Error() string {
	attempts := ""
	if e.Attempts > 1 {
		attempts = fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	if e.Code == "" {
		return fmt.Sprintf("%s on %s%s: %v", e.Op, e.Queue, attempts, e.Err)
	}
	fault := "SQS's side"
	if e.SenderFault {
		fault = "sender's fault"
	}
	return fmt.Sprintf("%s on %s%s: entry refused (%s): %s: %s", e.Op, e.Queue, attempts, fault, e.Code, e.Message)
}

// Unwrap returns the call's error.
func (e *Error) Unwrap() error { return e.Err }

// Transient tells whether the entry may succeed if sent again later: it was
// throttled or failed on SQS's side, or the call failed for a reason that
// may pass (see Retryable). An entry the sender got wrong (an invalid or
// stale receipt handle, a message SQS refuses) is not.
func (e *Error) Transient() bool {
	if e.Code == "" {
		return Retryable(e.Err)
	}
	if _, throttled := throttleCodes[e.Code]; throttled {
		return true
	}
	return !e.SenderFault
}

// Refused tells whether SQS judged this entry and refused it for good (an
// invalid or stale receipt handle, a message it does not take): unlike a
// failed call, where no entry was judged, even one that will not pass by
// itself (expired credentials, access denied).
func (e *Error) Refused() bool { return e.Code != "" && !e.Transient() }

// throttleCodes are the codes of throttling: sender faults worth a retry.
var throttleCodes = func() map[string]struct{} {
	m := map[string]struct{}{
		(&types.RequestThrottled{}).ErrorCode(): {},
		(&types.KmsThrottled{}).ErrorCode():     {},
	}
	for c := range retry.DefaultThrottleErrorCodes {
		m[c] = struct{}{}
	}
	return m
}()

// Retryable reports whether a failed SQS call may succeed if made again:
// throttling, a server-side (5xx) error, a request that could not be sent
// or got no answer (connection refused or reset, EOF), an attempt's own
// timeout, or the SDK's retry quota running out. A cancelled context never
// is; nor is a request SQS refused as the sender's fault. It inspects error
// types (errors.As), never error text.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if _, ok := throttleCodes[code]; ok {
			return true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[code]; ok {
			return true
		}
		if apiErr.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		// Status 0: no answer at all; the checks below look at why.
		if status := respErr.HTTPStatusCode(); status == 429 || status >= 500 {
			return true
		}
	}
	var sendErr *smithyhttp.RequestSendError
	var quota ratelimit.QuotaExceededError
	var netErr net.Error
	switch {
	case errors.As(err, &sendErr), errors.As(err, &quota):
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true // an attempt's own timeout; the caller's context is checked before retrying
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return false
}
