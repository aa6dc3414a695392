package awsconn_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
)

// recorder is an HTTP client that notes where each request would go and
// answers none: the test sees the endpoint the SDK resolved, no network.
type recorder struct {
	mu    sync.Mutex
	hosts []string
}

var errRecorded = errors.New("recorded, not sent")

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, req.URL.Scheme+"://"+req.URL.Host)
	r.mu.Unlock()
	return nil, errRecorded
}

func (r *recorder) last(t *testing.T) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.hosts) == 0 {
		t.Fatal("no request was made")
	}
	return r.hosts[len(r.hosts)-1]
}

// endpoints returns where the worker's SQS and CloudWatch clients send
// their calls for cfg, in the current process environment.
func endpoints(t *testing.T, cfg config.Config) (sqsURL, cloudWatchURL string) {
	t.Helper()
	ctx := context.Background()
	awsCfg, err := awsconn.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	_, err = awsconn.SQS(awsCfg, cfg).GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("q")},
		func(o *sqs.Options) { o.HTTPClient = rec; o.RetryMaxAttempts = 1 })
	if !errors.Is(err, errRecorded) {
		t.Fatalf("SQS call: %v", err)
	}
	sqsURL = rec.last(t)
	_, err = awsconn.CloudWatch(awsCfg).PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("n")},
		func(o *cloudwatch.Options) { o.HTTPClient = rec; o.RetryMaxAttempts = 1 })
	if !errors.Is(err, errRecorded) {
		t.Fatalf("CloudWatch call: %v", err)
	}
	return sqsURL, rec.last(t)
}

// isolate gives the SDK an environment with static credentials and no
// shared configuration files, so only the variables a case sets count.
func isolate(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k) // the SDK tells unset from empty for some of them
	}
}

// TestEndpoints checks which endpoint each client uses. Not parallel: the
// SDK reads the process environment.
func TestEndpoints(t *testing.T) {
	const (
		global = "http://global.test:4566"
		cw     = "http://cloudwatch.test:9999"
		sqsEP  = "http://sqs.test:9324"
		flag   = "http://flag.test:1234"
		real   = "https://sqs.us-east-1.amazonaws.com"
		realCW = "https://monitoring.us-east-1.amazonaws.com"
	)
	for _, tc := range []struct {
		name     string
		env      map[string]string
		endpoint string // the flag's value; empty: the Config from the environment
		sqs, cw  string
	}{
		{name: "AWS_ENDPOINT_URL for every service", env: map[string]string{"AWS_ENDPOINT_URL": global}, sqs: global, cw: global},
		{name: "AWS_ENDPOINT_URL_CLOUDWATCH sends CloudWatch elsewhere",
			env: map[string]string{"AWS_ENDPOINT_URL": global, "AWS_ENDPOINT_URL_CLOUDWATCH": cw}, sqs: global, cw: cw},
		{name: "AWS_ENDPOINT_URL_SQS sends SQS elsewhere",
			env: map[string]string{"AWS_ENDPOINT_URL": global, "AWS_ENDPOINT_URL_SQS": sqsEP}, sqs: sqsEP, cw: global},
		{name: "service variable alone", env: map[string]string{"AWS_ENDPOINT_URL_CLOUDWATCH": cw}, sqs: real, cw: cw},
		{name: "nothing set: real AWS", env: nil, sqs: real, cw: realCW},
		{name: "the flag overrides AWS_ENDPOINT_URL", env: map[string]string{"AWS_ENDPOINT_URL": global}, endpoint: flag, sqs: flag, cw: flag},
		{name: "the flag alone", endpoint: flag, sqs: flag, cw: flag},
		{name: "the flag, and a service variable for CloudWatch",
			env: map[string]string{"AWS_ENDPOINT_URL_CLOUDWATCH": cw}, endpoint: flag, sqs: flag, cw: cw},
		{name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: real AWS",
			env: map[string]string{"AWS_ENDPOINT_URL": global, "AWS_ENDPOINT_URL_CLOUDWATCH": cw, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, sqs: real, cw: realCW},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := config.Load(os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			if tc.endpoint != "" {
				cfg.AWSEndpoint = tc.endpoint // what --aws-endpoint-url does
			}
			gotSQS, gotCW := endpoints(t, cfg)
			if gotSQS != tc.sqs {
				t.Errorf("SQS goes to %s, want %s", gotSQS, tc.sqs)
			}
			if gotCW != tc.cw {
				t.Errorf("CloudWatch goes to %s, want %s", gotCW, tc.cw)
			}
		})
	}
}
