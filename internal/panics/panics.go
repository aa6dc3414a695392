// Package panics turns a panic into an error with its stack: a panic in
// one message's work is that message's failure, never the process's end.
// The pool (a task), the handler chain (a message) and the store's batcher
// (a batch write) recover through it.
package panics

import (
	"fmt"
	"runtime/debug"
)

// Error is a recovered panic.
type Error struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error is the short form and the stack.
func (e *Error) Error() string { return e.Short() + "\n\n" + string(e.Stack) }

// Short is "panic: <value>", without the stack (for a result's degraded).
func (e *Error) Short() string { return fmt.Sprintf("panic: %v", e.Value) }

// Transient is false: the same work would panic again.
func (e *Error) Transient() bool { return false }

// Recover, deferred, turns a panic of the function into *err:
//
//	defer panics.Recover(&err)
func Recover(err *error) {
	if v := recover(); v != nil {
		*err = &Error{Value: v, Stack: debug.Stack()}
	}
}
