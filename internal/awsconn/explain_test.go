package awsconn_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
)

// getQueueURL makes the worker's first call through the real SDK to
// endpoint (nil: AWS's own for the region) and returns its error.
func getQueueURL(t *testing.T, cfg config.Config) error {
	t.Helper()
	awsCfg := aws.Config{Region: cfg.Region, Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
	if cfg.AWSEndpoint != "" {
		awsCfg.BaseEndpoint = aws.String(cfg.AWSEndpoint)
	}
	_, err := awsconn.SQS(awsCfg, cfg).GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("q")},
		func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("GetQueueUrl succeeded")
	}
	return err
}

// sqsError is a stand-in for SQS that answers every call with one error.
func sqsError(t *testing.T, status int, queryError, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if queryError != "" {
			w.Header().Set("X-Amzn-Query-Error", queryError)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func wantSetup(t *testing.T, err error, variable string, advice ...string) {
	t.Helper()
	var se *awsconn.SetupError
	if !errors.As(err, &se) || se.Var != variable {
		t.Fatalf("Explain = %v (%T), want a *SetupError naming %s", err, err, variable)
	}
	for _, a := range advice {
		if !strings.Contains(se.Advice, a) {
			t.Errorf("advice %q lacks %q", se.Advice, a)
		}
	}
	if !errors.As(err, new(*smithy.OperationError)) {
		t.Errorf("the SDK's error is not wrapped: %v", err)
	}
}

// TestExplainNamesTheVariable feeds the SDK's real errors (endpoints that
// refuse, do not resolve, or refuse the credentials) to Explain.
func TestExplainNamesTheVariable(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()

	t.Run("nothing listens at AWS_ENDPOINT_URL", func(t *testing.T) {
		t.Parallel()
		gone := httptest.NewServer(nil) // its port, closed: nothing listens there
		gone.Close()
		c := cfg
		c.AWSEndpoint = gone.URL
		wantSetup(t, awsconn.Explain(getQueueURL(t, c), c), "AWS_ENDPOINT_URL", "nothing answers at "+c.AWSEndpoint)
	})
	t.Run("AWS_ENDPOINT_URL does not resolve", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.AWSEndpoint = "http://no-such-host.invalid:4566" // .invalid never resolves (RFC 6761)
		wantSetup(t, awsconn.Explain(getQueueURL(t, c), c), "AWS_ENDPOINT_URL", "does not resolve")
	})
	t.Run("AWS refuses the credentials", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.AWSEndpoint = sqsError(t, http.StatusForbidden, "InvalidClientTokenId;Sender",
			`{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}`)
		wantSetup(t, awsconn.Explain(getQueueURL(t, c), c), "AWS_ACCESS_KEY_ID", "AWS refused the credentials")
	})
	t.Run("another error is left as it is", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.AWSEndpoint = sqsError(t, http.StatusInternalServerError, "", `{"__type":"com.amazonaws.sqs#InternalError","message":"oops"}`)
		err := getQueueURL(t, c)
		if got := awsconn.Explain(err, c); got != err {
			t.Errorf("Explain(%v) = %v, want it unchanged", err, got)
		}
	})
}

// sdkSendError is the SDK's error for a request to rawURL that failed with
// cause before an answer, as the SDK wraps it.
func sdkSendError(rawURL string, cause error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "GetQueueUrl",
		Err: &url.Error{Op: "Post", URL: rawURL, Err: &net.OpError{Op: "dial", Net: "tcp", Err: cause}}}
}

// TestExplainAWSEndpoints covers AWS's own endpoints, which a test cannot
// reach for real: a host that does not exist is the region's fault, one
// that does not answer the network's.
func TestExplainAWSEndpoints(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.Region = "us-east-9"
	noHost := sdkSendError("https://sqs.us-east-9.amazonaws.com/", &net.DNSError{Err: "no such host", Name: "sqs.us-east-9.amazonaws.com", IsNotFound: true})
	wantSetup(t, awsconn.Explain(noHost, cfg), "AWS_REGION", `"us-east-9"`, "AWS_ENDPOINT_URL")

	refused := sdkSendError("https://sqs.us-east-1.amazonaws.com/", errors.New("connection refused"))
	err := awsconn.Explain(refused, config.Defaults())
	if errors.As(err, new(*awsconn.SetupError)) || !strings.Contains(err.Error(), "route to AWS") || !errors.Is(err, refused) {
		t.Errorf("AWS unreachable: %v; want the network advice around the SDK's error, not a setting", err)
	}
}

func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	ok := aws.Config{Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
	if err := awsconn.CheckCredentials(context.Background(), ok); err != nil {
		t.Errorf("static credentials: %v", err)
	}
	none := aws.Config{Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})}
	var se *awsconn.SetupError
	if err := awsconn.CheckCredentials(context.Background(), none); !errors.As(err, &se) || se.Var != "AWS_ACCESS_KEY_ID" ||
		!strings.Contains(se.Advice, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("no credentials: %v, want a *SetupError naming AWS_ACCESS_KEY_ID", err)
	}
	if err := awsconn.CheckCredentials(context.Background(), aws.Config{}); !errors.As(err, &se) {
		t.Errorf("no provider: %v, want a *SetupError", err)
	}
}
