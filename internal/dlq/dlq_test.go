package dlq_test

import (
	"context"
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
