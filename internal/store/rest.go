package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/weaviate/weaviate-go-client/v4/weaviate/fault"
)

// rest sends one REST request on the pooled transport and returns the status
// and body. The error is a classified *Error when no answer came.
func (s *Store) rest(ctx context.Context, method, path string) (int, []byte, error) {
	return s.restBody(ctx, method, path, nil)
}

// restBody is rest with a JSON body (nil for none).
func (s *Store) restBody(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.restBase+path, rd)
	if err != nil {
		return 0, nil, &Error{Kind: KindRejected, Err: err}
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, callError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, callError(ctx, err)
	}
	return resp.StatusCode, answer, nil
}

// clientError classifies an error of the Weaviate client. Its
// *fault.WeaviateClientError does not unwrap: the status or the network
// error sits in DerivedFromError, possibly nested.
func (s *Store) clientError(ctx context.Context, err error) *Error {
	for {
		var ce *fault.WeaviateClientError
		if !errors.As(err, &ce) {
			break
		}
		if ce.IsUnexpectedStatusCode {
			return s.statusError(ce.StatusCode, []byte(ce.Msg))
		}
		if ce.DerivedFromError == nil {
			return &Error{Kind: KindRejected, Detail: excerpt(ce.Msg)}
		}
		err = ce.DerivedFromError
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) {
		return &Error{Kind: KindRejected, Detail: "unexpected answer", Err: err}
	}
	return callError(ctx, err)
}
