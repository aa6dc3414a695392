package awsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/config"
)

// SetupError says that a setting keeps the worker from talking to AWS at
// all: which variable to fix, and what to do. It wraps the SDK's error.
type SetupError struct {
	Var    string // the variable to fix, like AWS_ENDPOINT_URL
	Advice string // what is wrong and what to do
	Err    error
}

func (e *SetupError) Error() string { return e.Advice + ": " + e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// credentialsTimeout bounds the credential chain's first retrieval; the
// instance-metadata lookup at its end retries for a few seconds at most.
const credentialsTimeout = 30 * time.Second

// CheckCredentials retrieves the credentials once (the SDK caches them), so
// that a process without any fails at start, saying where it looked, rather
// than on its first call with the SDK's chain of provider errors.
func CheckCredentials(ctx context.Context, awsCfg aws.Config) error {
	err := errors.New("no credentials provider")
	if awsCfg.Credentials != nil {
		ctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
		defer cancel()
		_, err = awsCfg.Credentials.Retrieve(ctx)
	}
	if err != nil {
		return &SetupError{Var: "AWS_ACCESS_KEY_ID", Err: err,
			Advice: "no AWS credentials found (looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE's files, " +
				"web identity, the ECS task role and EC2 instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " +
				"(any values for an emulator), or AWS_PROFILE, or run with a task role"}
	}
	return nil
}

// refusedCredentials are the error codes AWS answers a call with when it
// does not accept the credentials that signed it.
var refusedCredentials = map[string]bool{
	"InvalidClientTokenId": true, "UnrecognizedClientException": true, "SignatureDoesNotMatch": true,
	"InvalidAccessKeyId": true, "IncompleteSignature": true, "ExpiredToken": true, "ExpiredTokenException": true,
	"InvalidSignatureException": true, "MissingAuthenticationToken": true,
}

// Explain returns err, the error of an SQS call made at start, as a
// *SetupError when it shows which setting is wrong: nothing answers at the
// configured endpoint (AWS_ENDPOINT_URL, or the SDK's AWS_ENDPOINT_URL_SQS
// when the call went elsewhere); AWS's endpoint for the region does not exist
// (AWS_REGION); AWS refuses the credentials (AWS_ACCESS_KEY_ID). AWS's own
// endpoint unreachable is a network fault, not a setting: that error only
// gains advice. Anything else comes back as it is. It reads the error's
// types (url.Error, net.DNSError, net.OpError, smithy.APIError), never its
// text.
func Explain(err error, cfg config.Config) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && refusedCredentials[apiErr.ErrorCode()] {
		return &SetupError{Var: "AWS_ACCESS_KEY_ID", Err: err,
			Advice: fmt.Sprintf("AWS refused the credentials (%s): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, "+
				"or the task role; with an emulator, AWS_ENDPOINT_URL may point at real AWS", apiErr.ErrorCode())}
	}
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		return err
	}
	u, perr := url.Parse(urlErr.URL)
	if perr != nil {
		return err
	}
	endpoint := u.Scheme + "://" + u.Host
	configured := cfg.AWSEndpoint != "" && sameHost(cfg.AWSEndpoint, u.Host)
	variable := "AWS_ENDPOINT_URL"
	if !configured && !isAWSHost(u.Hostname()) {
		variable = "AWS_ENDPOINT_URL_SQS" // the SDK's own, for SQS only
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case isAWSHost(u.Hostname()) && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return &SetupError{Var: "AWS_REGION", Err: err,
			Advice: fmt.Sprintf("AWS has no endpoint %s (no such host): set AWS_REGION to a region the service runs in, like us-east-1 "+
				"(it is %q); without internet access, set AWS_ENDPOINT_URL to an emulator", u.Host, cfg.Region)}
	case isAWSHost(u.Hostname()) && errors.As(err, &opErr):
		return fmt.Errorf("cannot reach AWS at %s: check this host's route to AWS (a NAT gateway or VPC endpoints) and its security group: %w", endpoint, err)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return &SetupError{Var: variable, Err: err,
			Advice: fmt.Sprintf("the endpoint %s does not resolve (no such host): set %s to the emulator's address, like http://127.0.0.1:4566", endpoint, variable)}
	case errors.As(err, &opErr):
		return &SetupError{Var: variable, Err: err,
			Advice: fmt.Sprintf("nothing answers at %s: start the emulator there (`make up` prints its address) or set %s to where it listens", endpoint, variable)}
	}
	return err
}

// isAWSHost tells whether host is one of AWS's own endpoints.
func isAWSHost(host string) bool {
	for _, suffix := range []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// sameHost tells whether endpoint (a URL) names host (host:port).
func sameHost(endpoint, host string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && u.Host == host
}
