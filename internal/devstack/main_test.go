package devstack_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The stack's goroutines (process watchers, TCP proxies, kumo's proxy) end
// with Stop and Close: none may outlive the tests. kumo's DynamoDB emulator
// starts a process-wide reaper at init, which is not the stack's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper"))
}
