// Package cwfake is a hand-written fake of the CloudWatch API the metrics
// aggregator calls (metrics.CloudWatchAPI): a function field per method,
// checked against the interface at compile time, in the manner of
// Litestream's mock package. It is for tests that only need to see or
// steer the calls (a call that hangs, a call counted); the tests about the
// wire — size limits, gzip, CBOR, exact aggregates — use cwtest's server,
// and kumo's CloudWatch is the real path.
package cwfake

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/chatprep/chatprep/internal/metrics"
)

var _ metrics.CloudWatchAPI = (*CloudWatch)(nil)

// CloudWatch answers each call with its function field; a nil field
// answers an empty success.
type CloudWatch struct {
	// PutMetricDataFunc answers PutMetricData.
	PutMetricDataFunc func(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// PutMetricData calls PutMetricDataFunc.
func (c *CloudWatch) PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	if c.PutMetricDataFunc == nil {
		return &cloudwatch.PutMetricDataOutput{}, nil
	}
	return c.PutMetricDataFunc(ctx, in, optFns...)
}
