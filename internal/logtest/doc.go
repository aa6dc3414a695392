// Package logtest reads the worker's log from outside, as a log pipeline
// would: it collects the lines a worker writes (Logs, an io.Writer for its
// stdout), decodes each as one JSON object with every key once
// (DecodeStrict), finds lines by message and event (Count, Logs.Wait), and
// checks what CONTRACT.md (Logs) asks of every line: durations named *_ms
// (CheckDurationKeys) and no message text at info or above (CheckNoText).
//
// The whole-worker tests use it — package app's (the worker in process),
// the worker binary's and the chaos suite's — and so does cmd/devstack's
// quick-start test. What a per-event line must say about its result is the
// contract oracle's (contracttest.CheckEventLines).
package logtest
