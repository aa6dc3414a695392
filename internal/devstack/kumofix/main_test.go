package kumofix_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/devstack"
)

// The proxy's goroutines (its servers, orphaned long polls) end with
// Close: none may outlive the tests. kumo's DynamoDB emulator starts a
// process-wide reaper at init, which is not the proxy's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper"))
}

// binDir is the repository's bin/, where the AWS CLI of the query-protocol
// tests lives.
func binDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bin")
}
