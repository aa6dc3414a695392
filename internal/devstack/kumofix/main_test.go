package kumofix_test

import (
	"testing"

	"github.com/chatprep/chatprep/internal/leakcheck"
)

// The proxy's goroutines (its servers, orphaned long polls) end with
// Close: none may outlive the tests. kumo's DynamoDB emulator starts a
// process-wide reaper at init, which is not the proxy's.
func TestMain(m *testing.M) {
	leakcheck.Main(m, leakcheck.KumoReaper)
}
