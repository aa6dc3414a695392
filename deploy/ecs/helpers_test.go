package ecs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/chatprep/chatprep/deploy/deploytest"
)

// deployDoc is the walk-through that documents the files, the placeholders
// and the scaling target's inputs.
const deployDoc = "../../docs/DEPLOY.md"

// deployFiles lists the JSON files of this directory.
func deployFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no deployment files")
	}
	return files
}

// readRaw returns a deployment file as it is in the repository.
func readRaw(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// docValue reads a value from a DEPLOY.md table row "| `NAME` | value | … |".
func docValue(t *testing.T, doc []byte, name string) float64 {
	t.Helper()
	re := regexp.MustCompile("(?m)^\\|\\s*`" + regexp.QuoteMeta(name) + "`\\s*\\|\\s*([0-9]+(?:\\.[0-9]+)?)\\s*\\|")
	m := re.FindAllSubmatch(doc, -1)
	if len(m) != 1 {
		t.Fatalf("%s: want exactly one table row for `%s` with a number, found %d", deployDoc, name, len(m))
	}
	var v float64
	if _, err := fmt.Sscan(string(m[0][1]), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPlaceholders checks that every deployment file is valid JSON whose only
// $-expressions are the documented placeholders, that each placeholder is
// used and that DEPLOY.md explains each one.
func TestPlaceholders(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, name := range deployFiles(t) {
		raw := readRaw(t, name)
		if !json.Valid(raw) {
			t.Errorf("%s is not valid JSON", name)
		}
		for _, m := range deploytest.DollarRE.FindAllSubmatch(raw, -1) {
			used[string(m[2])] = true
		}
		b := deploytest.Expand(t, name, raw)
		if bytes.Contains(b, []byte("$")) {
			t.Errorf("%s: a $ is left after filling the placeholders", name)
		}
		if !bytes.Contains(doc, []byte("| `ecs/"+name+"` |")) { // its row of the table of files (see deploy's TestDeployTableNamesEveryFile)
			t.Errorf("%s does not describe %s", deployDoc, name)
		}
	}
	for name := range deploytest.Placeholders() {
		if !used[name] {
			t.Errorf("placeholder ${%s} is used by no deployment file", name)
		}
		if !bytes.Contains(doc, []byte("${"+name+"}")) {
			t.Errorf("%s does not explain ${%s}", deployDoc, name)
		}
	}
}
