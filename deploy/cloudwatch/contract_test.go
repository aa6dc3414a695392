package cloudwatch_test

import (
	"fmt"
	"maps"
	"slices"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/route"
)

// namespace is the worker's, as the pack is written for: the contract's
// default METRICS_NAMESPACE.
const namespace = "ChatPrep"

// sqsMetrics are the AWS/SQS queue metrics the pack may read (each has the
// one dimension QueueName).
var sqsMetrics = map[string]bool{
	"ApproximateNumberOfMessagesVisible":    true,
	"ApproximateNumberOfMessagesNotVisible": true,
	"ApproximateAgeOfOldestMessage":         true,
	"NumberOfMessagesSent":                  true,
	"NumberOfMessagesReceived":              true,
	"NumberOfMessagesDeleted":               true,
}

// queueNames are the contract's default queue names, which the pack uses.
func queueNames() map[string]string {
	d := config.Defaults()
	return map[string]string{"input": d.InputQueue, "dlq": d.DLQQueue, "response": d.ResponseQueue}
}

// routes are the Route values the worker sends with the built-in rules.
func routes() []string {
	return append(route.Builtin().Names(), metrics.OtherRoute)
}

// checkMetric says what is wrong with a reference to a metric, or nil: a
// contract metric in the worker's namespace with the Route dimension (a
// route the worker sends) exactly on [Route] metrics, or an AWS/SQS queue
// metric of one of the contract's queues.
func checkMetric(ns, name string, dims map[string]string) error {
	switch ns {
	case namespace:
		m, ok := contractMetric(name)
		if !ok {
			return fmt.Errorf("%s/%s is not a metric of CONTRACT.md", ns, name)
		}
		if !m.Route {
			if len(dims) != 0 {
				return fmt.Errorf("%s has dimensions %v; the contract gives it none", name, dims)
			}
			return nil
		}
		if r, ok := dims[metrics.RouteDimension]; len(dims) != 1 || !ok || !slices.Contains(routes(), r) {
			return fmt.Errorf("%s has dimensions %v; want Route, one of %v", name, dims, routes())
		}
	case "AWS/SQS":
		if !sqsMetrics[name] {
			return fmt.Errorf("AWS/SQS %s is not a queue metric the pack knows", name)
		}
		if q, ok := dims["QueueName"]; len(dims) != 1 || !ok || !slices.Contains(slices.Collect(maps.Values(queueNames())), q) {
			return fmt.Errorf("AWS/SQS %s with dimensions %v; want QueueName, one of the contract's queues %v", name, dims, queueNames())
		}
	default:
		return fmt.Errorf("namespace %q: want %s or AWS/SQS", ns, namespace)
	}
	return nil
}

func contractMetric(name string) (metrics.Metric, bool) {
	for _, m := range metrics.Metrics() {
		if m.Name == name {
			return m, true
		}
	}
	return metrics.Metric{}, false
}
