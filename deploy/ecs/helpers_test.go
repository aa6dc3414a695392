package ecs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/chatprep/chatprep/internal/config"
)

// deployDoc is the walk-through that documents the files, the placeholders
// and the scaling target's inputs.
const deployDoc = "../../docs/DEPLOY.md"

// placeholders are the ${NAME}s the deployment files may hold, each with the
// sample value the tests put in its place (as envsubst does at deploy time).
// AWS_REGION is the contract's default region, so that the task definition's
// environment can be compared with the contract's defaults.
func placeholders() map[string]string {
	region := config.Defaults().Region
	return map[string]string{
		"AWS_ACCOUNT_ID":              "123456789012",
		"AWS_REGION":                  region,
		"IMAGE_TAG":                   "v1.2.3",
		"WEAVIATE_HOST":               "weaviate.chatprep.internal",
		"WEAVIATE_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:" + region + ":123456789012:secret:chatprep/weaviate-api-key-AbCdEf",
		"SUBNET_A":                    "subnet-0123456789abcdef0",
		"SUBNET_B":                    "subnet-0fedcba9876543210",
		"SECURITY_GROUP":              "sg-0123456789abcdef0",
	}
}

// dollarRE matches what envsubst would replace: $NAME and ${NAME}.
var dollarRE = regexp.MustCompile(`\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(\})?`)

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

// expand replaces every ${NAME} with its sample value and fails on any
// placeholder the deployment doesn't document.
func expand(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	vals := placeholders()
	return dollarRE.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := dollarRE.FindSubmatch(m)
		v, ok := vals[string(sub[2])]
		if !ok || len(sub[1]) == 0 || len(sub[3]) == 0 {
			t.Errorf("%s: %s is not a placeholder the deployment knows (want one of ${%s})", name, m, strings.Join(sortedKeys(vals), "}, ${"))
			return m
		}
		return []byte(v)
	})
}

// readExpanded returns a deployment file with its placeholders filled.
func readExpanded(t *testing.T, name string) []byte {
	t.Helper()
	return expand(t, name, readRaw(t, name))
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// decodeStrict decodes b into v as the AWS CLI reads --cli-input-json: a key
// v has no field for is an error, and so is anything after the object.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return errors.New("data after the top-level object")
	}
	return nil
}

// mustDecode decodes a deployment file (placeholders filled) strictly into v.
func mustDecode(t *testing.T, name string, v any) []byte {
	t.Helper()
	b := readExpanded(t, name)
	if err := decodeStrict(b, v); err != nil {
		t.Fatalf("%s does not decode into %T: %v", name, v, err)
	}
	for _, bad := range badEnums(reflect.ValueOf(v), reflect.TypeOf(v).Elem().Name()) {
		t.Errorf("%s: %s", name, bad)
	}
	return b
}

// badEnums walks v and reports each SDK enum value (a string type with a
// Values method) that is set but not one of the type's known values:
// encoding/json accepts any string for them.
func badEnums(v reflect.Value, path string) []string {
	var bad []string
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			bad = append(bad, badEnums(v.Elem(), path)...)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				bad = append(bad, badEnums(v.Field(i), path+"."+f.Name)...)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			bad = append(bad, badEnums(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			bad = append(bad, badEnums(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key()))...)
		}
	case reflect.String:
		values := v.MethodByName("Values")
		if !values.IsValid() || v.String() == "" {
			break
		}
		known := values.Call(nil)[0]
		var names []string
		for i := range known.Len() {
			names = append(names, known.Index(i).String())
		}
		if !slices.Contains(names, v.String()) {
			bad = append(bad, fmt.Sprintf("%s = %q is not a known %s (%s)", path, v.String(), v.Type().Name(), strings.Join(names, ", ")))
		}
	}
	return bad
}

// errNotSent ends a call the recorder has nowhere to send.
var errNotSent = errors.New("not sent: recorded only")

// recorder is the SDK's HTTP client in these tests: it keeps each request
// body by operation (X-Amz-Target) and passes the request on to next, or,
// without next, ends it with errNotSent.
type recorder struct {
	next aws.HTTPClient

	mu     sync.Mutex
	bodies map[string][]byte
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	target := req.Header.Get("X-Amz-Target")
	r.mu.Lock()
	if r.bodies == nil {
		r.bodies = map[string][]byte{}
	}
	r.bodies[target[strings.LastIndexByte(target, '.')+1:]] = body
	r.mu.Unlock()
	if r.next == nil {
		return nil, errNotSent
	}
	return r.next.Do(req)
}

// body returns the last request body sent for an operation.
func (r *recorder) body(t *testing.T, op string) []byte {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bodies[op]
	if !ok {
		t.Fatalf("no %s request was sent", op)
	}
	return b
}

// sdkConfig is an aws.Config with static credentials in the contract's
// default region that sends through rec, without retries.
func sdkConfig(rec *recorder) aws.Config {
	return aws.Config{
		Region:      config.Defaults().Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  rec,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// sameJSON fails unless the SDK sent exactly the file: the same keys, spelt
// as the API spells them (which is what the CLI takes), and the same values.
// A key the decoder matched only case-insensitively, or a value it dropped,
// shows up here.
func sameJSON(t *testing.T, name string, file, sent []byte) {
	t.Helper()
	var f, s any
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(sent, &s); err != nil {
		t.Fatalf("%s: the SDK sent no JSON: %v", name, err)
	}
	if !reflect.DeepEqual(f, s) {
		fb, _ := json.Marshal(f)
		sb, _ := json.Marshal(s)
		t.Errorf("%s: the SDK does not send the file as it is\nfile %s\nsent %s", name, fb, sb)
	}
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
		for _, m := range dollarRE.FindAllSubmatch(raw, -1) {
			used[string(m[2])] = true
		}
		b := expand(t, name, raw)
		if bytes.Contains(b, []byte("$")) {
			t.Errorf("%s: a $ is left after filling the placeholders", name)
		}
		if !bytes.Contains(doc, []byte("deploy/ecs/"+name)) && !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("%s does not describe %s", deployDoc, name)
		}
	}
	for name := range placeholders() {
		if !used[name] {
			t.Errorf("placeholder ${%s} is used by no deployment file", name)
		}
		if !bytes.Contains(doc, []byte("${"+name+"}")) {
			t.Errorf("%s does not explain ${%s}", deployDoc, name)
		}
	}
}
