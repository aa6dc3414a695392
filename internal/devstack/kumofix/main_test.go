package kumofix_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The proxy's goroutines (its servers, orphaned long polls) end with
// Close: none may outlive the tests. kumo's DynamoDB emulator starts a
// process-wide reaper at init, which is not the proxy's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper"))
}
