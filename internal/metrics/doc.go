// Package metrics aggregates the worker's own timings and counts — the
// metrics table of CONTRACT.md — in memory and sends them to CloudWatch in
// batched PutMetricData calls, never once per message.
//
// Recording: Aggregator.Duration and Aggregator.Count cost about a hundred
// nanoseconds, also under contention, and never wait for CloudWatch. Values land in a shard picked at
// random (a short mutex each, so goroutines seldom meet), per metric stream
// (name and Route) and minute. Only the dimensions of the contract exist:
// routes outside Config.Routes are folded into OtherRoute, unknown names are
// refused and counted.
//
// Sending: every FlushInterval (Run), and once more when Run's context ends,
// a flush sends each stream-minute as one datum timestamped with the minute's
// start, so data sent late still lands in its minute. Durations go as a
// Values/Counts distribution in Milliseconds, so CloudWatch can compute
// percentiles: exact while a stream-minute has at most MaxValuesPerDatum
// distinct values, bucketed past that with the exact minimum and maximum
// kept as values of their own, so SampleCount, Sum, Minimum and Maximum stay
// exact (Sum up to float64 rounding). Counts go as one Value, their sum.
// Data are batched MaxDataPerCall per call and kept under MaxRequestBytes.
//
// Why not StatisticValues next to Values: CloudWatch documents Value and
// StatisticValues as mutually exclusive, and says nothing about how it
// combines StatisticValues with Values in one datum (it accepts the pair);
// a datum whose Values already give exact count, sum, minimum and maximum
// needs no second, undocumented source of the same numbers.
//
// Failures: a failed call keeps its data, and Run retries with back-off. The
// data kept are bounded by Config.MaxPending: past it the oldest minutes are
// dropped first; minutes older than CloudWatch accepts (MaxDatumAge) are
// dropped too. The number of values dropped is logged, counted in Stats and
// sent as MetricsDropped once CloudWatch answers again. Recording is never
// slowed or stopped by any of this.
//
// A nil *Aggregator is the disabled recorder for METRICS_ENABLED=false.
//
// docs/METRICS.md describes the metrics, their aggregation and the
// dashboard; the subpackage cwtest is a CloudWatch test server that decodes
// the SDK's real requests so tests can check exact aggregates.
package metrics
