// Package devstack runs chatprep's real dependencies on one machine without
// Docker: the kumo AWS emulator (SQS and CloudWatch) in process on a loopback
// port, and a real Weaviate server as a child process, built from the Go
// module proxy into bin/ the first time.
//
// Every stack gets its own free ports and temporary data directory, and Stop
// ends exactly what it started (by pid) and removes the directories, so
// parallel stacks — two test binaries, a demo beside a test run — never
// collide.
//
// kumo keeps its state in process-wide globals: two stacks in one process
// share queues and metrics. Tests therefore share one stack per test binary
// and give each test its own queue names (see package stacktest).
package devstack
