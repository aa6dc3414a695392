package sqsbatch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func responseError(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err,
	}}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("send 3 results to q: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"throttling code", &smithy.GenericAPIError{Code: "ThrottlingException"}, true},
		{"request throttled", &smithy.GenericAPIError{Code: "RequestThrottled"}, true},
		{"server fault", &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}, true},
		{"503", responseError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}), true},
		{"429", responseError(429, errors.New("slow down")), true},
		{"400 bad parameter", responseError(400, &smithy.GenericAPIError{Code: "InvalidParameterValue", Fault: smithy.FaultClient}), false},
		{"unknown queue", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Fault: smithy.FaultClient}, false},
		{"connection reset", &smithyhttp.RequestSendError{Err: syscall.ECONNRESET}, true},
		{"bare reset", syscall.ECONNRESET, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"retry quota", errors.Join(&smithy.GenericAPIError{Code: "Whatever"}, ratelimit.QuotaExceededError{Available: 0, Requested: 5}), true},
		{"max attempts wrapping a throttle", &retry.MaxAttemptsError{Attempt: 3, Err: &smithy.GenericAPIError{Code: "Throttling"}}, true},
		{"attempt timeout", &smithy.CanceledError{Err: context.DeadlineExceeded}, true},
		{"caller cancelled", &smithy.CanceledError{Err: context.Canceled}, false},
		{"send error but cancelled", &smithyhttp.RequestSendError{Err: context.Canceled}, false},
		{"anything else", errors.New("connection reset by peer"), false}, // text is never looked at
		{"nil", nil, false},
	} {
		if got := sqsbatch.Retryable(wrap(tc.err)); tc.err != nil && got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
	if sqsbatch.Retryable(nil) {
		t.Error("nil is not transient")
	}
}
