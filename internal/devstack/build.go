package devstack

import (
	"context"
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
	return ensureBinary(ctx, binDir, WeaviateBinaryName, "Weaviate server "+WeaviateVersion, progress, func(absBin string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "go", "install", WeaviateModule+"@"+WeaviateVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+absBin)
		return cmd
	})
}

// AWSCLIName is the file name under bin/ of Debian's AWS CLI, which
// EnsureAWSCLI puts there.
const AWSCLIName = "aws"

// AWSCLIVersion is the AWS CLI version EnsureAWSCLI provides: Debian 12's
// awscli package, a client of SQS's query protocol (the JSON protocol came
// with 2.13).
const AWSCLIVersion = "2.9.19"

// EnsureAWSCLI returns binDir/aws, Debian's aws-cli AWSCLIVersion, fetching
// it first when it is missing: tools/awscli.sh (next to binDir) takes the
// Debian packages with apt-get download and unpacks them into binDir, a few
// seconds. The tests run the README's `aws sqs` examples with it.
func EnsureAWSCLI(ctx context.Context, binDir string, progress io.Writer) (string, error) {
	return ensureBinary(ctx, binDir, AWSCLIName, "Debian's aws-cli "+AWSCLIVersion, progress, func(absBin string) *exec.Cmd {
		return exec.CommandContext(ctx, filepath.Join(filepath.Dir(absBin), "tools", "awscli.sh"), absBin)
	})
}

// RepoAWSCLI is EnsureAWSCLI for the bin/ directory of the repository that
// holds the working directory.
func RepoAWSCLI(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := repoBinDir()
	if err != nil {
		return "", err
	}
	return EnsureAWSCLI(ctx, dir, progress)
}

// ensureBinary returns binDir/name, running build (given binDir's absolute
// path) first when it is missing, under a file lock in binDir: concurrent
// callers wait for one build. what names it in the progress lines.
func ensureBinary(ctx context.Context, binDir, name, what string, progress io.Writer, build func(absBin string) *exec.Cmd) (string, error) {
	bin := filepath.Join(binDir, name)
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	lock, err := os.OpenFile(filepath.Join(binDir, "."+name+"-build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("build %s: lock: %w", name, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("build %s: lock: %w", name, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	// Another process may have built it while we waited for the lock.
	if isExecutable(bin) {
		return bin, nil
	}

	absBin, err := filepath.Abs(binDir)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	fmt.Fprintf(progress, "building %s into %s (first run only; takes a few minutes)\n", what, binDir)
	cmd := build(absBin)
	out, err := runWithProgress(cmd, progress, "building "+what)
	if err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", what, err, out)
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("build %s: the build finished but %s is missing", what, bin)
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
	dir, err := repoBinDir()
	if err != nil {
		return "", err
	}
	return EnsureWeaviateBinary(ctx, dir, progress)
}

// RepoJaegerBinary is EnsureJaegerBinary for the bin/ directory of the
// repository that holds the working directory.
func RepoJaegerBinary(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := repoBinDir()
	if err != nil {
		return "", err
	}
	return EnsureJaegerBinary(ctx, dir, progress)
}

// BuildRepoPackage builds pkg, a package of the repository that holds the
// working directory (an import path, or a path like ./worker relative to
// the repository's root), into the program out, with -race when race is
// set: the binaries tests drive as processes, as users run them.
func BuildRepoPackage(out, pkg string, race bool) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// repoBinDir is the bin/ directory of the repository that holds the
// working directory.
func repoBinDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
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
