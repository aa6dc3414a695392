package devstack_test

import (
	"testing"

	"github.com/chatprep/chatprep/internal/leakcheck"
)

// The stack's goroutines (process watchers, TCP proxies, kumo's proxy) end
// with Stop and Close: none may outlive the tests. kumo's DynamoDB emulator
// starts a process-wide reaper at init, which is not the stack's.
func TestMain(m *testing.M) {
	leakcheck.Main(m, leakcheck.KumoReaper)
}
