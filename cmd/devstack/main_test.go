package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/devstack"
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
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func buildBinaries(dir string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		return err
	}
	workerBin, devstackBin = filepath.Join(dir, "worker"), filepath.Join(dir, "devstack")
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex
	for bin, pkg := range map[string]string{workerBin: "./worker", devstackBin: "./cmd/devstack"} {
		wg.Go(func() {
			build := exec.Command("go", "build", "-race", "-o", bin, pkg)
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("build %s: %v\n%s", pkg, err, out))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
