// Package pool is the worker's one shared, bounded goroutine pool: a fixed
// number of goroutines (POOL_SIZE) run the preprocessing tasks of every
// message in flight.
//
// A message submits its tasks with Go and waits for them on its own
// goroutine (the consumer's handler goroutine), never on a pool worker, so a
// saturated pool cannot deadlock: workers only ever run tasks, and a task
// never waits for another task. With POOL_SIZE=1 and hundreds of messages in
// flight every message still finishes, one task at a time.
//
// What the pool promises for each task:
//
//   - submitting respects the caller's context: Go blocks while the queue is
//     full and gives up when the context ends; a task whose context ended
//     while it was queued is never run;
//   - each task runs under its own timeout (TASK_TIMEOUT), counted from the
//     moment a worker starts it; its error is then a *TimeoutError;
//   - a panic in a task becomes that task's error (a *panics.Error with the
//     stack), never the end of the process;
//   - the waiter is answered when the task's timeout passes or its context
//     is cancelled, even if the task's function ignores its context (the
//     worker stays with such a function until it returns; Stats counts them
//     as Overruns).
//
// There is no goroutine per task beyond the fixed workers: a task is a small
// struct in a buffered channel. Only a task that overruns its timeout, or
// whose context is cancelled before it ends (queued or running), briefly
// uses a goroutine of the runtime's context.AfterFunc to answer its waiter
// at once. Submitting and waiting for a task costs about 2-3 µs and 15
// allocations (BenchmarkGoWait).
package pool
