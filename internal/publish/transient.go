package publish

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// IsTransient reports whether a failed SQS call may succeed if made again:
// throttling, a server-side (5xx) error, a request that could not be sent or
// got no answer (connection refused or reset, EOF), an attempt's own timeout,
// or the SDK's retry quota running out. A cancelled context is never
// transient. It inspects error types (errors.As), never error text.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
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
		return true // the attempt's own timeout; the caller's is checked before retrying
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return false
}
