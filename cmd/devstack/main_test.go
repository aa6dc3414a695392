package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/leakcheck"
)

// The worker and devstack binaries the quick-start tests run, built once
// for the test binary (with -race), not once per test: both tests run the
// same two programs.
var workerBin, devstackBin string

// The quick-start tests run the devstack and the worker as processes and
// watch them from here: no watcher may outlive the tests. kumo's DynamoDB
// emulator starts a process-wide reaper at init (this package links kumo),
// which is not ours to stop.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chatprep-devstack-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(leakcheck.Check(code, leakcheck.KumoReaper))
}

func buildBinaries(dir string) error {
	workerBin, devstackBin = filepath.Join(dir, "worker"), filepath.Join(dir, "devstack")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range []struct{ out, pkg string }{{workerBin, "./worker"}, {devstackBin, "./cmd/devstack"}} {
		wg.Go(func() { errs[i] = devstack.BuildRepoPackage(b.out, b.pkg, true) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
