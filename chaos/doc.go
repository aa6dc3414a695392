// Package chaos is chatprep's fault suite. It holds tests only: real worker
// processes (the `worker` binary, built by the suite) consume queues of the
// embedded local stack (kumo behind its fault-injecting proxy, a real
// Weaviate server behind TCP proxies that delay or break connections) while
// the suite kills workers, restarts them as a deploy does, takes Weaviate
// away or slows it, and makes AWS throttle, fail or drop calls. After each
// scenario it accounts for every event:
//
//   - every user message has exactly one stored message in Weaviate and
//     exactly one result on a FIFO response queue (at least one, each with
//     its event_id, on a standard queue), in per-chat order on FIFO queues;
//   - every assistant message is stored, once, and has no result;
//   - every invalid event is in the dead-letter queue, and nothing else is;
//   - the input queue is empty.
//
// "Stored" is checked twice: each message by its id, and each chat's count
// by a filtered query. A SIGKILLed Weaviate can lose index entries of writes
// it acknowledged (Weaviate's own gap; TestIndexGapAfterKills reproduces
// it): in the short form's scenario that kills Weaviate (beside three other
// lanes), a chat whose count falls short while every message is there by id
// gets `verify --repair`, as an operator does after a crash, and the counts
// must then be exact (the table notes it). The long form keeps the strict
// count.
//
// Forms:
//
//	go test ./chaos                      short form (part of make test), with -race
//	go test ./chaos -v -chaos.full       long form (make chaos): the table,
//	                                     30 s Weaviate outage, repeated kills,
//	                                     the scale-out figures
//	go test ./chaos -v -chaos.soak       10 minutes at a steady rate (make soak)
//	go test ./chaos -v -run Gap -chaos.gap N
//	                                     SIGKILL Weaviate during writes up to N
//	                                     times, until worker verify finds an
//	                                     index gap (then repairs it)
//
// The short form runs its tests and TestChaos's scenarios in parallel
// lanes: go test's -parallel, 4 unless given (-parallel 1 runs them one at
// a time). They mostly wait — for a load sent at a fixed rate, a drain, a
// worker's last long poll — and no scenario can feel another's fault: each
// has its own queues and an AWS endpoint of its own
// (devstack.AWS.NewEndpoint) whose faults reach only its workers, and the
// scenarios that kill Weaviate or put its shards READONLY, and the one that
// deactivates the workers' key, each get a Weaviate server of their own.
// The long forms run one test and one scenario at a time on the stack's
// parts: their drain times and resource samples are measurements.
//
// Besides outages, the table has the faults that are not outages: a
// read-only shard (Weaviate's shard status API) and the workers' API key
// refused (an RBAC database user deactivated), each mid-stream. For every
// scenario the accounting also counts results published for messages that
// are not stored (unstored), which must be 0.
//
// The security and hygiene tests (Weaviate API key, health endpoint on
// loopback, no message text or key in the logs) run in every form.
package chaos
