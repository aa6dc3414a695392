// Package cwtest is a CloudWatch test server for end-to-end tests that must
// check exact metric aggregates, which kumo cannot give (it keeps a
// StatisticValues datum as one average and Values without their Counts; see
// LOCAL-STACK.md).
//
// The Server speaks CloudWatch's Smithy RPC v2 CBOR protocol, the one
// aws-sdk-go-v2's CloudWatch client uses. It decodes the SDK's real
// PutMetricData requests, gzip-compressed or not, strictly (an unknown field
// fails the call) with github.com/fxamacker/cbor/v2; it checks each call
// against CloudWatch's documented limits (1000 data and 1 MB a call, 150
// values a datum, 30 dimensions, Value exclusive with StatisticValues and
// Values, timestamps at most two weeks old and two hours ahead) and answers
// an invalid call as CloudWatch does (400 InvalidParameterValue); it records
// every datum exactly. ListMetrics answers from what was recorded; other
// operations are refused.
//
// Failures are injected with FailNext (the next n calls) and Fail/Recover
// (every call until Recover): Throttling, InternalError, Unavailable,
// InvalidParameter or Hang. WaitCalls and WaitRequests wait on the server's
// own signal, not on sleeps. Aggregates and Total compute from the recorded
// data what CloudWatch would: SampleCount, Sum, Minimum, Maximum and the
// Values/Counts distribution, per stream and timestamp or in total.
//
//	cw := cwtest.New(t)
//	agg, _ := metrics.New(cw.Client(), metrics.Config{Namespace: "Test"})
//	agg.Duration(metrics.HandlerTotalDuration, "general", 12*time.Millisecond)
//	_ = agg.Flush(ctx)
//	got := cw.Total("Test", metrics.HandlerTotalDuration, cwtest.Dims("Route", "general"))
package cwtest
