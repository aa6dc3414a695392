// Package deploytest is what the tests of the deployment files (deploy/ecs,
// deploy/cloudwatch) share: the ${NAME} placeholders and their sample
// values, the strict decoding the AWS CLI applies to --cli-input-json, the
// check of SDK enum values, and a recorder that shows what the SDK sends
// for a file, so a test can require that the SDK sends exactly the file.
package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/fxamacker/cbor/v2"

	"github.com/chatprep/chatprep/internal/config"
)

// Placeholders are the ${NAME}s the deployment files may hold, each with
// the sample value the tests put in its place (as envsubst does at deploy
// time). AWS_REGION is the contract's default region, so that the task
// definition's environment can be compared with the contract's defaults.
func Placeholders() map[string]string {
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

// DollarRE matches what envsubst would replace: $NAME and ${NAME}.
var DollarRE = regexp.MustCompile(`\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(\})?`)

// Expand replaces every ${NAME} with its sample value and fails on any
// placeholder the deployment doesn't document.
func Expand(t testing.TB, name string, b []byte) []byte {
	t.Helper()
	vals := Placeholders()
	return DollarRE.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := DollarRE.FindSubmatch(m)
		v, ok := vals[string(sub[2])]
		if !ok || len(sub[1]) == 0 || len(sub[3]) == 0 {
			t.Errorf("%s: %s is not a placeholder the deployment knows (want one of ${%s})", name, m, strings.Join(slices.Sorted(maps.Keys(vals)), "}, ${"))
			return m
		}
		return []byte(v)
	})
}

// DecodeStrict decodes b into v as the AWS CLI reads --cli-input-json: a
// key v has no field for is an error, and so is anything after the object.
func DecodeStrict(b []byte, v any) error {
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

// MustDecode reads the deployment file at path, fills its placeholders,
// decodes it strictly into v (a pointer to the SDK's input type), fails on
// an enum value the SDK does not know, and returns the filled file.
func MustDecode(t testing.TB, path string, v any) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := Expand(t, path, raw)
	if err := DecodeStrict(b, v); err != nil {
		t.Fatalf("%s does not decode into %T: %v", path, v, err)
	}
	for _, bad := range BadEnums(v) {
		t.Errorf("%s: %s", path, bad)
	}
	return b
}

// BadEnums walks v and reports each SDK enum value (a string type with a
// Values method) that is set but not one of the type's known values:
// encoding/json accepts any string for them.
func BadEnums(v any) []string {
	rv := reflect.ValueOf(v)
	name := rv.Type().Name()
	if rv.Kind() == reflect.Pointer {
		name = rv.Type().Elem().Name()
	}
	return badEnums(rv, name)
}

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

// ErrNotSent ends a call the Recorder has nowhere to send.
var ErrNotSent = errors.New("not sent: recorded only")

// Recorder is the SDK's HTTP client in these tests: it keeps each request
// body by operation (from X-Amz-Target, or the path of Smithy RPC v2 CBOR,
// whose bodies it keeps as JSON) and passes the request on to Next, or,
// without Next, ends it with ErrNotSent.
type Recorder struct {
	Next aws.HTTPClient

	mu     sync.Mutex
	bodies map[string][]byte
}

// Do records req and sends it on.
func (r *Recorder) Do(req *http.Request) (*http.Response, error) {
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
	op := req.Header.Get("X-Amz-Target")
	if op == "" { // Smithy RPC v2: /service/<service>/operation/<operation>
		op = req.URL.Path
	}
	op = op[strings.LastIndexAny(op, "./")+1:]
	if req.Header.Get("Content-Type") == "application/cbor" {
		j, err := cborToJSON(body)
		if err != nil {
			return nil, fmt.Errorf("recorder: %s: %w", op, err)
		}
		body = j
	}
	r.mu.Lock()
	if r.bodies == nil {
		r.bodies = map[string][]byte{}
	}
	r.bodies[op] = body
	r.mu.Unlock()
	if r.Next == nil {
		return nil, ErrNotSent
	}
	return r.Next.Do(req)
}

// cborToJSON re-encodes a CBOR request body as JSON, for SameJSON.
func cborToJSON(b []byte) ([]byte, error) {
	dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any{})}.DecMode()
	if err != nil {
		return nil, err
	}
	var v any
	if err := dm.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Body returns the last request body sent for an operation.
func (r *Recorder) Body(t testing.TB, op string) []byte {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bodies[op]
	if !ok {
		t.Fatalf("no %s request was sent", op)
	}
	return b
}

// SDKConfig is an aws.Config with static credentials in the contract's
// default region that sends through rec, without retries.
func SDKConfig(rec *Recorder) aws.Config {
	return aws.Config{
		Region:      config.Defaults().Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  rec,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// SameJSON fails unless the SDK sent exactly the file: the same keys, spelt
// as the API spells them (which is what the CLI takes), and the same values.
// A key the decoder matched only case-insensitively, or a value it dropped,
// shows up here.
func SameJSON(t testing.TB, name string, file, sent []byte) {
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
