package deploy_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chatprep/chatprep/deploy/deploytest"
	"github.com/chatprep/chatprep/internal/devstack"
)

// deployRow is a row of docs/DEPLOY.md's table of deployment files.
type deployRow struct {
	file, call string
	step       int
	cli        string // the oldest AWS CLI v2 that takes the file, or "any"
}

// deployTable reads docs/DEPLOY.md's table of deployment files and the
// text of each step (its "### N." section).
func deployTable(t *testing.T) (rows []deployRow, steps map[int]string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(root(t), "docs", "DEPLOY.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z/.-]+\\.json)` \\| ([0-9]+) \\| `([a-z -]+)` \\| .* \\| (any|[0-9.]+)(?: \\(v1: [0-9.]+\\))? \\|$")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		step, _ := strconv.Atoi(m[2])
		rows = append(rows, deployRow{file: m[1], step: step, call: m[3], cli: m[4]})
	}
	steps = map[int]string{}
	sections := regexp.MustCompile(`(?m)^### ([0-9]+)\. `).FindAllStringSubmatchIndex(string(doc), -1)
	for i, m := range sections {
		end := len(doc)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		if next := bytes.Index(doc[m[1]:end], []byte("\n## ")); next >= 0 {
			end = m[1] + next
		}
		n, _ := strconv.Atoi(string(doc[m[2]:m[3]]))
		steps[n] = string(doc[m[0]:end])
	}
	return rows, steps
}

// TestDeployTableNamesEveryFile: every JSON file under deploy/ is a row of
// DEPLOY.md's table, once, and the step the row names runs the row's AWS
// call on that file.
func TestDeployTableNamesEveryFile(t *testing.T) {
	t.Parallel()
	rows, steps := deployTable(t)
	var files []string
	dir := filepath.Join(root(t), "deploy")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, r := range rows {
		listed = append(listed, r.file)
		base := strings.TrimSuffix(filepath.Base(r.file), ".json")
		if text := steps[r.step]; !strings.Contains(text, "aws "+r.call+" ") || !strings.Contains(text, base) {
			t.Errorf("DEPLOY.md: %s is used in step %d by %s, but step %d does not run `aws %s` on it", r.file, r.step, r.call, r.step, r.call)
		}
	}
	slices.Sort(files)
	slices.Sort(listed)
	if !slices.Equal(files, listed) {
		t.Errorf("DEPLOY.md's table lists %q; deploy/ holds %q", listed, files)
	}
}

// TestDeployFilesWithDebianAWSCLI runs each row's AWS call on its file
// (placeholders filled where the steps fill them) with Debian 12's aws-cli 2.9.19,
// against an endpoint that does not answer: the CLI checks the parameters
// before it sends anything. A file the table says any CLI takes, or one
// older than 2.9.19, must pass that check; a file that needs a newer CLI
// must be refused as an unknown parameter, as the step warns.
func TestDeployFilesWithDebianAWSCLI(t *testing.T) {
	t.Parallel()
	cli, err := devstack.RepoAWSCLI(t.Context(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := deployTable(t)
	if len(rows) == 0 {
		t.Fatal("no table of deployment files in DEPLOY.md")
	}
	// Each row its own CLI process, all at once: each is a Python start
	// (most of a second of CPU) and nothing else.
	for _, r := range rows {
		t.Run(r.file, func(t *testing.T) {
			t.Parallel()
			checkWithCLI(t, cli, r)
		})
	}
}

// checkWithCLI runs r's AWS call on its file with cli (see
// TestDeployFilesWithDebianAWSCLI).
func checkWithCLI(t *testing.T, cli string, r deployRow) {
	t.Helper()
	dir, home := t.TempDir(), t.TempDir()
	raw, err := os.ReadFile(filepath.Join(root(t), "deploy", r.file))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(r.file, "ecs/") || strings.HasPrefix(r.file, "cloudwatch/alarms/") {
		raw = deploytest.Expand(t, r.file, raw) // as the envsubst loop before the steps does
	}
	file := filepath.Join(dir, filepath.Base(r.file))
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--endpoint-url", "http://127.0.0.1:1", "--region", "us-east-1"}, strings.Fields(r.call)...)
	switch r.call {
	case "iam put-group-policy":
		args = append(args, "--group-name", "g", "--policy-name", "p", "--policy-document", "file://"+file)
	case "iam put-role-policy":
		args = append(args, "--role-name", "r", "--policy-name", "p", "--policy-document", "file://"+file)
	case "iam create-role":
		args = append(args, "--role-name", "r", "--assume-role-policy-document", "file://"+file)
	case "cloudwatch put-dashboard":
		args = append(args, "--dashboard-name", "d", "--dashboard-body", "file://"+file)
	default:
		args = append(args, "--cli-input-json", "file://"+file)
	}
	cmd := exec.CommandContext(t.Context(), cli, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x",
		"AWS_MAX_ATTEMPTS=1", "AWS_PAGER=", "AWS_CONFIG_FILE=" + filepath.Join(home, "config")}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	sent := bytes.Contains(out, []byte("Could not connect to the endpoint URL"))
	refused := bytes.Contains(out, []byte("Parameter validation failed")) && bytes.Contains(out, []byte("Unknown parameter"))
	if takes := r.cli == "any" || !newer(r.cli, devstack.AWSCLIVersion); takes && !sent || !takes && !refused {
		t.Errorf("aws %s on %s: the table says AWS CLI %s, so %s %s: %s", r.call, r.file, r.cli, devstack.AWSCLIVersion,
			map[bool]string{true: "should take it", false: "should refuse it"}[takes], out)
	}
}

// newer tells whether version a is newer than b (dotted numbers).
func newer(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x > y
		}
	}
	return false
}
