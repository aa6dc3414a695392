package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The quick-start tests run the devstack and the worker as processes and
// watch them from here: no watcher may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
