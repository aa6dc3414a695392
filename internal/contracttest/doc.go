// Package contracttest is the contract oracle: what CONTRACT.md (v3) says
// the worker's outputs hold, checked from outside. It decodes a message of
// the response queue as the contract's result, refusing unknown keys
// (ReadResult), and a dead letter (ReadDeadLetter); it runs the contract
// over a sequence of events to say what each user message's result must
// hold (Expect), and checks results against that (CheckContext), against
// what every result carries whatever its content (CheckEnvelope), and the
// per-event log lines against their results (CheckEventLines).
//
// It knows nothing of a stack: stacktest.Env reads results and dead letters
// off a test's queues and decodes them here, and package app's and the
// worker binary's tests check them here; cmd/devstack's quick-start test
// checks the traceparent of what the README's commands print (TraceParent).
// Nothing in it calls into the worker's packages except the event types.
package contracttest
