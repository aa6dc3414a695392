package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// WeaviateBinaryName is the server executable's file name under bin/.
const WeaviateBinaryName = "weaviate-server"

// EnsureWeaviateBinary returns binDir/weaviate-server, building it from the
// Go module proxy first when it is missing (about 3-5 minutes on 2 cores the
// first time; the Go build cache makes later builds quick). Progress goes to
// progress. Concurrent callers — parallel test binaries — wait for one build
// under a file lock instead of building twice.
func EnsureWeaviateBinary(ctx context.Context, binDir string, progress io.Writer) (string, error) {
	bin := filepath.Join(binDir, WeaviateBinaryName)
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("build weaviate: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(binDir, ".weaviate-build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("build weaviate: lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("build weaviate: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	// Another process may have built it while we waited for the lock.
	if isExecutable(bin) {
		return bin, nil
	}

	absBin, err := filepath.Abs(binDir)
	if err != nil {
		return "", fmt.Errorf("build weaviate: %w", err)
	}
	fmt.Fprintf(progress, "building Weaviate server %s into %s (first run only; takes a few minutes)\n", WeaviateVersion, binDir)
	cmd := exec.CommandContext(ctx, "go", "install", WeaviateModule+"@"+WeaviateVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+absBin)
	out, err := runWithProgress(cmd, progress, "building Weaviate server")
	if err != nil {
		return "", fmt.Errorf("build weaviate server (%s@%s): %w\n%s", WeaviateModule, WeaviateVersion, err, out)
	}
	if !isExecutable(bin) {
		return "", errors.New("build weaviate server: go install finished but " + bin + " is missing")
	}
	fmt.Fprintf(progress, "built %s\n", bin)
	return bin, nil
}

// runWithProgress runs cmd, printing a line every 30s so a slow build is
// visibly alive, and returns its combined output.
func runWithProgress(cmd *exec.Cmd, progress io.Writer, what string) ([]byte, error) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(progress, "  … still %s (%s)\n", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	return out, err
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// RepoWeaviateBinary is EnsureWeaviateBinary for the bin/ directory of the
// repository that holds the working directory (where tests and benchmarks
// run).
func RepoWeaviateBinary(ctx context.Context, progress io.Writer) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return "", err
	}
	return EnsureWeaviateBinary(ctx, filepath.Join(root, "bin"), progress)
}

// RepoRoot walks up from dir to the directory that holds chatprep's go.mod.
func RepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && isChatprepModule(b) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no chatprep go.mod in %s or above", dir)
		}
	}
}

func isChatprepModule(gomod []byte) bool {
	const line = "module github.com/chatprep/chatprep\n"
	return len(gomod) >= len(line) && string(gomod[:len(line)]) == line
}
