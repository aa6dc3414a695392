// Package bench is chatprep's benchmark (`make bench`): how many chat
// events per second one worker turns into context, at what latency, for how
// much CPU, memory and AWS calls, and how close that is to what Weaviate
// allows. It has no code of its own outside its tests: BenchmarkChatprep in
// bench_test.go runs every row on the embedded local stack and prints one
// table; `make bench` also writes it to bench/results/.
//
// Rows: 1 throughput against the limit (and chatprep v2's worker, built
// from its commit with git archive, beside today's), 2 the seed's table, 3
// chat length, 4 the worker's overhead, 5 scaling, 6 tracing's cost
// (tracing_test.go), 7 what reaches the context: evidence recall and tokens
// on the labelled corpus through the real worker, and bursts
// (context_test.go), 8 chatprep against a Node peer on Weaviate's default
// settings (peer_test.go; the peer is bench/peer/worker.js, its
// dependencies installed by `make bench` with npm ci; Weaviate's profile
// from Linux perf when it is on the PATH, perf_test.go), 9 what a user
// waits for: producer send → result received, open loop at 20 events/s and
// at 60% of the throughput on Weaviate's own memtable settings, beside an
// echo consumer (latency_test.go; bench/cmd/echoworker), 10 cost by the
// number of stored messages, 10 and 100 thousand (scale_test.go).
// BenchmarkScale (`make bench-scale`) runs row 10 at 10 thousand, 100
// thousand and 1 million stored messages, loaded with `worker import`, and
// writes bench/results/SCALE.md. BenchmarkTenancy (tenancy_test.go, not in
// `make bench`) is the measurement behind the store's tenants.
// Run it with
//
//	go test -run '^$' -bench Chatprep -benchtime 1x -timeout 75m ./bench/ [-args -results DIR -profile DIR -logs DIR -quick]
//
// or one row alone, e.g. -bench 'Chatprep/3_overhead'. Subpackages:
// workload (the chats, seed messages and events), corpus (the labelled
// corpus), recall (scoring results, and the in-process model of the
// worker's retrieval with the baseline and the ceiling), memstore (the
// benchmark-only in-memory store) and cmd/benchworker (the worker's app.Run
// with that store and pprof profiles).
package bench
