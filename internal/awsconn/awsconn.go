// Package awsconn builds the process's one aws.Config and the SQS and
// CloudWatch clients from it: one pooled HTTP transport shared by every call,
// the SDK's standard retryer, and the emulator switches of CONTRACT.md
// (SQS_VERIFY_CHECKSUMS).
package awsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/config"
)

// MaxConnsPerHost bounds idle keep-alive connections kept per endpoint. The
// worker's concurrent SQS calls (receivers, heartbeat, deletes, publishes)
// are well below it, so calls reuse connections instead of dialing.
const MaxConnsPerHost = 64

// Load returns the aws.Config for cfg: region, endpoint (AWS_ENDPOINT_URL,
// or the flag that overrides it; the SDK's AWS_ENDPOINT_URL_<SERVICE>
// variables override it per service) and a pooled HTTP client. Credentials
// come from the SDK's default chain (environment, ECS task role, …). More
// SDK load options may follow, such as the SDK's logger
// (awsconfig.WithLogger): it must be given here, since the credential chain
// (and its instance-metadata client, which warns) is built while loading.
func Load(ctx context.Context, cfg config.Config, more ...func(*awsconfig.LoadOptions) error) (aws.Config, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 4 * MaxConnsPerHost
		t.MaxIdleConnsPerHost = MaxConnsPerHost
		t.IdleConnTimeout = 90 * time.Second
		t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	})
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithHTTPClient(httpClient),
	}
	opts = append(opts, more...)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	var noProfile awsconfig.SharedConfigProfileNotExistError
	if errors.As(err, &noProfile) {
		return aws.Config{}, &SetupError{Var: "AWS_PROFILE", Err: err,
			Advice: fmt.Sprintf("the profile %q is in none of the shared config files: set AWS_PROFILE to one that is, or unset it", noProfile.Profile)}
	}
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	// The endpoint goes on the loaded configuration, where the SDK itself puts
	// AWS_ENDPOINT_URL, and not in as a load option: a load option's endpoint
	// is taken for every service, above the SDK's service-specific variables
	// (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_CLOUDWATCH), which then could
	// not send one service elsewhere. Set here, those variables still win for
	// their service, and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS still means real
	// AWS, as without the override.
	if cfg.AWSEndpoint != "" {
		ignore, _, err := awsconfig.GetIgnoreConfiguredEndpoints(ctx, awsCfg.ConfigSources)
		if err != nil {
			return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
		}
		if !ignore {
			awsCfg.BaseEndpoint = aws.String(cfg.AWSEndpoint)
		}
	}
	return awsCfg, nil
}

// SQS returns the SQS client. With SQS_VERIFY_CHECKSUMS=false the SDK's MD5
// check of answers is off (for kumo; see LOCAL-STACK.md).
func SQS(awsCfg aws.Config, cfg config.Config) *sqs.Client {
	return sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		o.DisableMessageChecksumValidation = !cfg.SQSVerifyChecksums
	})
}

// CloudWatch returns the CloudWatch client. Request compression follows the
// SDK's own AWS_DISABLE_REQUEST_COMPRESSION (kumo needs it off).
func CloudWatch(awsCfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(awsCfg)
}
