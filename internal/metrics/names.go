package metrics

import "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

// The metric names of CONTRACT.md. Metrics marked [Route] in the contract
// carry the Route dimension; the others carry no dimension at all.
const (
	// MessageHistoryDuration is user + assistant history retrieval [Route], Milliseconds.
	MessageHistoryDuration = "message_history_duration"
	// RelevanceSearchDuration is the relevance search [Route], Milliseconds.
	RelevanceSearchDuration = "relevance_search_duration"
	// PreprocessingDuration is all preprocessing of one message [Route], Milliseconds.
	PreprocessingDuration = "preprocessing_duration"
	// HandlerTotalDuration is receive to result published [Route], Milliseconds.
	HandlerTotalDuration = "handler_total_duration"
	// QueueWaitDuration is sent to received, Milliseconds (no dimension).
	QueueWaitDuration = "queue_wait_duration"
	// MessagesProcessed counts results published [Route].
	MessagesProcessed = "messages_processed"
	// MessagesDegraded counts results with a non-empty degraded list [Route].
	MessagesDegraded = "messages_degraded"
	// MessagesMuted counts results for muted chats (no dimension).
	MessagesMuted = "messages_muted"
	// MessagesRejected counts invalid events moved to the dead-letter queue (no dimension).
	MessagesRejected = "messages_rejected"
	// MessagesFailed counts messages left for retry (no dimension).
	MessagesFailed = "messages_failed"
)

// MetricsDropped is the one metric the aggregator adds to the contract's ten:
// recorded values it discarded unsent (buffer full while CloudWatch was down,
// older than CloudWatch accepts, or refused by CloudWatch as invalid), Count,
// no dimension. Only the aggregator records it; Count(MetricsDropped, …) from
// callers is refused as invalid.
const MetricsDropped = "metrics_dropped"

// WeaviatePausedDuration is an addition to the contract's metrics, recorded
// like them with Duration (Milliseconds, no dimension): how long the worker
// kept Weaviate calls and receiving paused because Weaviate could not serve
// it (the circuit breaker open or checking: an outage, a refused API key, a
// read-only shard), one value per paused period as it ends (a period lasts at
// most the breaker's longest open period, 30 s, so a long fault keeps adding
// values). Sum per minute is the time paused in it; any value at all means
// the worker was paused.
const WeaviatePausedDuration = "weaviate_paused_duration"

// RouteDimension is the name of the one dimension the contract names.
const RouteDimension = "Route"

// OtherRoute is the Route value that every route outside Config.Routes (and
// the empty route) is folded into, so the number of metric streams stays
// bounded whatever the callers pass.
const OtherRoute = "other"

// Kind says how a metric is recorded and sent.
type Kind int

const (
	// KindDuration metrics are recorded with Aggregator.Duration and sent in
	// Milliseconds as a Values/Counts distribution.
	KindDuration Kind = iota + 1
	// KindCount metrics are recorded with Aggregator.Count and sent as one
	// Value: the sum of the window's counts.
	KindCount
)

// Metric describes one metric the aggregator sends.
type Metric struct {
	Name  string             // the CloudWatch metric name
	Unit  types.StandardUnit // Milliseconds or Count
	Kind  Kind               // how it is recorded and aggregated
	Route bool               // carries the Route dimension
}

// Metrics returns the ten metrics of CONTRACT.md in the contract's order.
// MetricsDropped, which only the aggregator records, is not among them.
func Metrics() []Metric {
	return []Metric{
		{MessageHistoryDuration, types.StandardUnitMilliseconds, KindDuration, true},
		{RelevanceSearchDuration, types.StandardUnitMilliseconds, KindDuration, true},
		{PreprocessingDuration, types.StandardUnitMilliseconds, KindDuration, true},
		{HandlerTotalDuration, types.StandardUnitMilliseconds, KindDuration, true},
		{QueueWaitDuration, types.StandardUnitMilliseconds, KindDuration, false},
		{MessagesProcessed, types.StandardUnitCount, KindCount, true},
		{MessagesDegraded, types.StandardUnitCount, KindCount, true},
		{MessagesMuted, types.StandardUnitCount, KindCount, false},
		{MessagesRejected, types.StandardUnitCount, KindCount, false},
		{MessagesFailed, types.StandardUnitCount, KindCount, false},
	}
}

// metricIndex maps a recordable name to its index in the table the
// aggregator builds (Metrics() followed by MetricsDropped). A switch keeps
// the record path free of map hashing.
func metricIndex(name string) (int, bool) {
	switch name {
	case MessageHistoryDuration:
		return 0, true
	case RelevanceSearchDuration:
		return 1, true
	case PreprocessingDuration:
		return 2, true
	case HandlerTotalDuration:
		return 3, true
	case QueueWaitDuration:
		return 4, true
	case MessagesProcessed:
		return 5, true
	case MessagesDegraded:
		return 6, true
	case MessagesMuted:
		return 7, true
	case MessagesRejected:
		return 8, true
	case MessagesFailed:
		return 9, true
	case WeaviatePausedDuration:
		return 10, true
	}
	return 0, false
}

// table is Metrics(), WeaviatePausedDuration and MetricsDropped (last: see
// droppedStream): every metric the aggregator may send, indexed as
// metricIndex numbers them.
func table() []Metric {
	return append(Metrics(),
		Metric{WeaviatePausedDuration, types.StandardUnitMilliseconds, KindDuration, false},
		Metric{MetricsDropped, types.StandardUnitCount, KindCount, false})
}
