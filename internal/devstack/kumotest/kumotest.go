// Package kumotest gives a test binary SQS (and CloudWatch) alone: the kumo
// emulator in process behind the devstack proxy, which returns the FIFO
// system attributes on receive as SQS does, without a Weaviate server. It is
// for packages whose tests talk to SQS only; stacktest gives the whole
// stack. Each test makes its own queues (Queue).
//
//	func TestMain(m *testing.M) { kumotest.Main(m) }
package kumotest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/leakcheck"
)

var (
	emu       *devstack.AWS
	transport = &http.Transport{MaxIdleConnsPerHost: 16}
)

// Main starts the emulator, runs the tests, stops it, runs after (a
// package closing its own clients' idle connections), checks that no
// goroutine leaked, and exits.
func Main(m *testing.M, after ...func()) {
	var err error
	if emu, err = devstack.StartAWS(); err != nil {
		fmt.Fprintln(os.Stderr, "start kumo:", err)
		os.Exit(1)
	}
	code := m.Run()
	emu.Stop()
	transport.CloseIdleConnections()
	for _, f := range after {
		f()
	}
	os.Exit(leakcheck.Check(code, leakcheck.KumoReaper))
}

// URL is the emulator's endpoint.
func URL() string { return emu.URL }

// Client is an SQS client of the emulator with static credentials; opts
// adjust it.
func Client(opts ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, append([]func(*sqs.Options){func(o *sqs.Options) { o.BaseEndpoint = aws.String(emu.URL) }}, opts...)...)
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// Queue creates a queue named after the test (FIFO when fifo) and returns
// its URL.
func Queue(t testing.TB, api *sqs.Client, fifo bool) string {
	t.Helper()
	name := fmt.Sprintf("%.60s-%08x", unsafe.ReplaceAllString(t.Name(), "-"), rand.Uint32())
	attrs := map[string]string{}
	if fifo {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	out, err := api.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}
