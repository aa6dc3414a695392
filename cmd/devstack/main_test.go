package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The quick-start tests run the devstack and the worker as processes and
// watch them from here: no watcher may outlive the tests. kumo's DynamoDB
// emulator starts a process-wide reaper at init (this package links kumo),
// which is not ours to stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper"))
}
