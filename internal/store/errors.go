package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrClosed is the cause of the error every call returns after Close.
var ErrClosed = errors.New("store is closed")

// Kind classifies a failed Weaviate call, so callers can decide between
// retrying, degrading and stopping without reading error text.
type Kind uint8

// The kinds of Error. Outages may succeed when tried again.
const (
	// KindUnavailable: Weaviate could not be reached or failed (connection
	// refused, reset, HTTP 5xx, gRPC Unavailable). An outage.
	KindUnavailable Kind = iota + 1
	// KindOverloaded: Weaviate refused the call for load (HTTP 429, or
	// "429 Too many requests" as a GraphQL error). An outage.
	KindOverloaded
	// KindTimeout: the call's deadline passed. An outage.
	KindTimeout
	// KindCanceled: the caller canceled the call.
	KindCanceled
	// KindUnauthorized: Weaviate refused the API key, or wants one and none
	// is configured. A lasting fault: it lasts until the key or Weaviate's
	// configuration changes, and fails every call meanwhile.
	KindUnauthorized
	// KindRejected: Weaviate refused the request itself (HTTP 4xx other than
	// 401, 403, 408 and 429; gRPC InvalidArgument, NotFound and the like; an
	// object of a batch refused while its shard is writable; a missing
	// collection). Permanent for this request.
	KindRejected
	// KindSchema: an existing collection conflicts with chatprep's schema.
	// Needs an operator.
	KindSchema
	// KindClosed: the Store was closed.
	KindClosed
	// KindReadOnly: a shard the write needs is read-only (Weaviate sets it
	// so by itself when its disk passes DISK_USE_READONLY_PERCENTAGE, or an
	// operator did). A lasting fault: it lasts until someone sets the shard
	// READY again, and fails every write meanwhile; reads still work.
	KindReadOnly
	// KindUnconfirmed: Weaviate did not confirm the write. Another object
	// of the same batch request failed, and Weaviate reports a failure of
	// a whole shard on that shard's first object only (see the package
	// doc): the object may or may not be stored. Transient: writing it
	// again is harmless (writes are idempotent replaces).
	KindUnconfirmed
)

var kindNames = [...]string{
	KindUnavailable:  "weaviate unavailable",
	KindOverloaded:   "weaviate overloaded",
	KindTimeout:      "weaviate call timed out",
	KindCanceled:     "weaviate call canceled",
	KindUnauthorized: "weaviate refused the credentials",
	KindRejected:     "weaviate rejected the request",
	KindSchema:       "weaviate schema conflict",
	KindClosed:       "store closed",
	KindReadOnly:     "weaviate shard read-only",
	KindUnconfirmed:  "weaviate did not confirm the write",
}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Outage tells whether a call that failed this way shows Weaviate itself in
// trouble (unreachable, overloaded, slow): it may succeed later without any
// change. The circuit breaker counts these.
func (k Kind) Outage() bool {
	return k == KindUnavailable || k == KindOverloaded || k == KindTimeout
}

// Lasting tells whether a call that failed this way shows a fault of
// Weaviate that fails every such call until someone changes something (a
// refused API key, a read-only shard), not the request's own fault. One is
// enough for the circuit breaker to open.
func (k Kind) Lasting() bool {
	return k == KindUnauthorized || k == KindReadOnly
}

// Fault tells whether a call that failed this way shows Weaviate unable to
// serve the worker: an outage or a lasting fault. The circuit breaker counts
// these, and only these.
func (k Kind) Fault() bool { return k.Outage() || k.Lasting() }

// Error is a failed Weaviate call. Find it with errors.As; the operation it
// belongs to is in the wrapping message ("history of chat c-1: ...").
type Error struct {
	Kind Kind
	// Status is the HTTP status Weaviate answered, 0 if none (network
	// failure, gRPC, GraphQL error in a 200 answer).
	Status int
	// Detail says what went wrong, for people. It holds at most a short
	// excerpt of Weaviate's answer and never the API key.
	Detail string
	// Err is the underlying error, if any (a network error, the context's
	// error, a gRPC status).
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error, so errors.Is(err,
// context.DeadlineExceeded) holds for a timeout.
func (e *Error) Unwrap() error { return e.Err }

// Transient tells whether the failure is not the request's own: everything
// but Weaviate rejecting the request or a schema conflict. A message whose
// store call failed transiently is held and retried (handler.IsTransient):
// an outage, a refused key or a closing store say nothing against it.
func (e *Error) Transient() bool { return e.Kind != KindRejected && e.Kind != KindSchema }

// KindOf returns the Kind of the first *Error in err's chain, 0 if none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// IsOutage tells whether err is a store error that shows Weaviate in
// trouble (unreachable, overloaded, or slow), which may go away by itself.
func IsOutage(err error) bool {
	return KindOf(err).Outage()
}

// IsLasting tells whether err is a store error of a lasting fault (see
// Kind.Lasting).
func IsLasting(err error) bool {
	return KindOf(err).Lasting()
}

// IsFault tells whether err is a store error that shows Weaviate unable to
// serve the worker (see Kind.Fault): what the circuit breaker counts.
func IsFault(err error) bool {
	return KindOf(err).Fault()
}

// maxDetail bounds the excerpt of Weaviate's answer kept in an Error, in
// bytes: enough for what went wrong ("shard ChatMessage_x9 is read-only"),
// too little for a sentence. An answer can quote the request, and with it
// message text (personal data), and an Error's text reaches log lines,
// span statuses and a result's degraded[].error.
const maxDetail = 64

// excerpt is s as an Error keeps it: of a JSON answer its strings (so
// that its own quotes are not taken for the message's), what stands
// between quotes left out (Weaviate quotes the values it complains about:
// a query's words, a property's value), then at most maxDetail bytes.
func excerpt(s string) string {
	s = strings.TrimSpace(unquoted(jsonStrings(strings.TrimSpace(s))))
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// jsonStrings is the string values of s, joined by "; ", when s is a JSON
// object or array (as Weaviate's error answers are: {"error":[{"message":
// "…"}]}), else s.
func jsonStrings(s string) string {
	if s == "" || (s[0] != '{' && s[0] != '[') {
		return s
	}
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(v[k])
			}
		}
	}
	walk(v)
	return strings.Join(out, "; ")
}

// unquoted is s with what stands between a pair of quotes (", ' or `)
// replaced by "…"; an unclosed quote cuts the rest.
func unquoted(s string) string {
	if !strings.ContainsAny(s, "\"'`") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexAny(s, "\"'`")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		q := s[i]
		b.WriteString(s[:i+1])
		b.WriteString("…")
		j := strings.IndexByte(s[i+1:], q)
		if j < 0 {
			return b.String()
		}
		b.WriteByte(q)
		s = s[i+1+j+1:]
	}
}

// callError classifies a failure to get any answer (network error, context
// end). ctx is the call's context: when it has ended, that is the cause.
func callError(ctx context.Context, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return &Error{Kind: KindTimeout, Err: ctxErr}
		}
		return &Error{Kind: KindCanceled, Err: ctxErr}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Err: err}
	}
	return &Error{Kind: KindUnavailable, Err: err}
}

// statusError classifies an HTTP answer with an unexpected status.
func (s *Store) statusError(status int, body []byte) *Error {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return s.authError(status)
	case status == http.StatusTooManyRequests:
		return &Error{Kind: KindOverloaded, Status: status, Detail: excerpt(string(body))}
	case status == http.StatusRequestTimeout || status >= 500:
		return &Error{Kind: KindUnavailable, Status: status, Detail: excerpt(string(body))}
	default:
		return &Error{Kind: KindRejected, Status: status, Detail: excerpt(string(body))}
	}
}

// authError never includes the key nor Weaviate's answer: the answer is not
// needed to act, and the key must not reach a log.
func (s *Store) authError(status int) *Error {
	detail := "Weaviate refused the API key; check WEAVIATE_API_KEY"
	if s.cfg.APIKey == "" {
		detail = "Weaviate requires an API key and none is configured; set WEAVIATE_API_KEY"
	}
	if status == http.StatusForbidden {
		detail = "the API key is not allowed to do this; check the key's permissions in Weaviate"
	}
	return &Error{Kind: KindUnauthorized, Status: status, Detail: detail}
}

// grpcError classifies a failed gRPC call.
func (s *Store) grpcError(ctx context.Context, err error) *Error {
	if ctx.Err() != nil {
		return callError(ctx, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Kind: KindUnavailable, Err: err}
	}
	switch st.Code() {
	case codes.Unauthenticated:
		return s.authError(http.StatusUnauthorized)
	case codes.PermissionDenied:
		return s.authError(http.StatusForbidden)
	case codes.Unavailable, codes.Aborted:
		return &Error{Kind: KindUnavailable, Detail: "gRPC " + st.Code().String() + ": " + excerpt(st.Message())}
	case codes.ResourceExhausted:
		return &Error{Kind: KindOverloaded, Detail: "gRPC " + st.Code().String() + ": " + excerpt(st.Message())}
	case codes.DeadlineExceeded:
		return &Error{Kind: KindTimeout, Detail: "gRPC " + st.Code().String(), Err: context.DeadlineExceeded}
	case codes.Canceled:
		return &Error{Kind: KindCanceled, Detail: "gRPC " + st.Code().String(), Err: context.Canceled}
	case codes.Unknown, codes.Internal:
		// Weaviate answers every plain error of its own with Unknown, a
		// refused API key included ("extract auth: …", the reason only in
		// the text), and a proxy in front of it answers its own failures
		// with Internal or Unknown: the code says only "it failed". REST
		// says the same failure with a status (500, 401), so ask REST.
		return s.diagnose(ctx, "gRPC "+st.Code().String()+": "+excerpt(st.Message()))
	}
	return &Error{Kind: KindRejected, Detail: "gRPC " + st.Code().String() + ": " + excerpt(st.Message())}
}

// graphQLError classifies the errors of a GraphQL answer (HTTP 200): the
// same failure as a gRPC Unknown (a plain error of Weaviate's), so
// classified the same way (diagnose). An overloaded Weaviate says so only in
// the message text, "429 Too many requests", which nothing structured
// carries: that one text is read.
func (s *Store) graphQLError(ctx context.Context, messages []string) *Error {
	msg := strings.Join(messages, "; ")
	if e := graphQLOverloaded(msg); e != nil {
		return e
	}
	return s.diagnose(ctx, "GraphQL error: "+excerpt(msg))
}

func graphQLOverloaded(msg string) *Error {
	lower := strings.ToLower(msg)
	if strings.Contains(lower, "429") || strings.Contains(lower, "too many requests") {
		return &Error{Kind: KindOverloaded, Detail: "GraphQL: " + excerpt(msg)}
	}
	return nil
}

// diagnose classifies a failure that says only "Weaviate failed this call"
// (a gRPC Unknown or Internal, a GraphQL error) the way the same failure is
// classified over REST, by asking Weaviate's REST API, with one
// authenticated call, what state it is in (shardStatus of the messages
// collection): a refused key is KindUnauthorized as a 401 is; an
// unreachable REST endpoint is an outage; a missing collection is
// KindRejected, as REST's 404 is. When REST answers normally, Weaviate (or a
// proxy in front of it) failed this one call: KindUnavailable, as an HTTP
// 500 is. detail says what failed.
func (s *Store) diagnose(ctx context.Context, detail string) *Error {
	if _, e := s.shardStatus(ctx, MessagesCollection); e != nil {
		if e.Kind == KindUnauthorized {
			return e // never the server's text next to a refused key
		}
		if e.Detail == "" {
			e.Detail = detail
		} else {
			e.Detail = detail + "; " + e.Detail
		}
		return e
	}
	return &Error{Kind: KindUnavailable, Detail: detail}
}
