package dlq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func TestAttrText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain reason", "plain reason"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"nul \x00 and bell \a", "nul \uFFFD and bell \uFFFD"},
		{"tab\tnewline\n", "tab\tnewline\n"},
	} {
		if got := dlq.AttrText(tc.in, 100); got != tc.want {
			t.Errorf("AttrText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := dlq.AttrText(long, dlq.MaxErrorAttrLen)
	if len(got) > dlq.MaxErrorAttrLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("truncated to %d bytes, valid %t: %q…", len(got), utf8.ValidString(got), got[:20])
	}
}

// sender records what Put sends.
type sender struct{ sent []sqsbatch.Message }

func (s *sender) Send(_ context.Context, msgs []sqsbatch.Message) []error {
	s.sent = append(s.sent, msgs...)
	return make([]error, len(msgs))
}

// TestPut: body untouched, attributes kept plus error_code and error; on
// FIFO the group (or "poison") and the message id as deduplication id.
func TestPut(t *testing.T) {
	t.Parallel()
	s := &sender{}
	q := dlq.New(s, true)
	m := &handler.Message{ID: "m-1", Body: "not json", Attributes: map[string]string{"traceparent": "00-abc", "error": "old"}}
	if err := q.Put(t.Context(), m, "not_json", "invalid character"); err != nil {
		t.Fatal(err)
	}
	got := s.sent[0]
	attr := func(k string) string { return aws.ToString(got.Attributes[k].StringValue) }
	if got.Body != "not json" || got.GroupID != dlq.DefaultGroupID || got.DeduplicationID != "m-1" ||
		attr(dlq.AttrErrorCode) != "not_json" || attr(dlq.AttrError) != "invalid character" || attr("traceparent") != "00-abc" {
		t.Errorf("sent %+v", got)
	}
}

// TestPutKeepsWithinSQSAttributeLimit: a poison message with more
// attributes than SQS takes besides the two Put adds keeps the trace
// context and the first others by name, with their types; error_code and
// error are always there.
func TestPutKeepsWithinSQSAttributeLimit(t *testing.T) {
	t.Parallel()
	s := &sender{}
	q := dlq.New(s, false)
	attrs := map[string]string{"traceparent": "00-abc", "tracestate": "k=v"}
	types := map[string]string{"a00": "Number"}
	for i := range 10 {
		attrs[fmt.Sprintf("a%02d", i)] = fmt.Sprint(i)
	}
	m := &handler.Message{ID: "m-1", Body: "{}", Attributes: attrs, AttributeTypes: types}
	if err := q.Put(t.Context(), m, "invalid_field", "role"); err != nil {
		t.Fatal(err)
	}
	got := s.sent[0].Attributes
	var names []string
	for k := range got {
		names = append(names, k)
	}
	slices.Sort(names)
	want := []string{"a00", "a01", "a02", "a03", "a04", "a05", dlq.AttrError, dlq.AttrErrorCode, "traceparent", "tracestate"}
	if !slices.Equal(names, want) {
		t.Errorf("attributes %v, want %v (SQS takes 10)", names, want)
	}
	if dt := aws.ToString(got["a00"].DataType); dt != "Number" {
		t.Errorf("a00 has DataType %q, want its own Number", dt)
	}
}
