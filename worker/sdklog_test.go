package main

import (
	"bytes"
	"testing"

	"github.com/aws/smithy-go/logging"
)

// TestSDKWarningsInTheCommandsForm: a command's AWS SDK warnings reach its
// stderr as "worker NAME: aws sdk: …" lines, and the SDK's debug lines not
// at all.
func TestSDKWarningsInTheCommandsForm(t *testing.T) {
	var stderr bytes.Buffer
	log := sdkLogger(&cmdEnv{name: "results", stderr: &stderr})
	log.Logf(logging.Warn, "falling back to IMDSv1: %s", "403")
	log.Logf(logging.Debug, "retrying request")
	if got, want := stderr.String(), "worker results: aws sdk: falling back to IMDSv1: 403\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}
