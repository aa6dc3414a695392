package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Shard statuses as Weaviate's REST API names them
// (GET /v1/schema/{collection}/shards).
const (
	shardReady    = "READY"
	shardIndexing = "INDEXING" // writable: only the vector queue is behind
	shardReadOnly = "READONLY"
)

// shardInfo is one entry of GET /v1/schema/{collection}/shards.
type shardInfo struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// shardStatus returns the status of every shard of collection: one
// authenticated REST call. Weaviate answers 404 for a missing collection
// and for any other failure to read a shard's status (a shard that cannot be
// opened), so a 404 is told apart with a read of the collection's schema.
func (s *Store) shardStatus(ctx context.Context, collection string) ([]shardInfo, *Error) {
	s.calls.schema.Add(1)
	status, body, err := s.rest(ctx, http.MethodGet, "/schema/"+url.PathEscape(collection)+"/shards")
	if err != nil {
		return nil, asError(err)
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		class, err := s.getClass(ctx, collection)
		switch {
		case err != nil:
			return nil, asError(err)
		case class == nil:
			return nil, &Error{Kind: KindRejected, Status: status,
				Detail: "collection " + collection + " does not exist; run `worker setup`"}
		}
		return nil, &Error{Kind: KindUnavailable, Status: status,
			Detail: "the status of a shard of " + collection + " cannot be read: " + excerpt(string(body))}
	default:
		return nil, s.statusError(status, body)
	}
	var shards []shardInfo
	if err := json.Unmarshal(body, &shards); err != nil {
		return nil, &Error{Kind: KindUnavailable, Status: status, Detail: "unreadable shard status of " + collection, Err: err}
	}
	return shards, nil
}

// asError is err's *Error (every error of the store's own calls has one).
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindUnavailable, Err: err}
}

// writable tells, from the shards' statuses, whether collection can take
// writes: nil if every shard is READY or INDEXING, KindReadOnly if one is
// READONLY, KindUnavailable for any other status (LOADING, a status this
// version does not know).
func writable(collection string, shards []shardInfo) *Error {
	var readOnly, other []string
	for _, sh := range shards {
		switch strings.ToUpper(sh.Status) {
		case shardReady, shardIndexing:
		case shardReadOnly:
			readOnly = append(readOnly, sh.Name)
		default:
			other = append(other, sh.Name+" "+sh.Status)
		}
	}
	switch {
	case len(readOnly) > 0:
		return &Error{Kind: KindReadOnly, Detail: "shard " + someOf(readOnly) + " of " + collection +
			" is READONLY (Weaviate sets that when its disk passes DISK_USE_READONLY_PERCENTAGE; " +
			"PUT /v1/schema/" + collection + "/shards/{shard} with {\"status\":\"READY\"} undoes it)"}
	case len(other) > 0:
		return &Error{Kind: KindUnavailable, Detail: "shard " + someOf(other) + " of " + collection + " cannot take writes"}
	}
	return nil
}

// someOf names the first three of names, sorted, and how many more (a
// multi-tenant collection has a shard per tenant).
func someOf(names []string) string {
	slices.Sort(names)
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
}

// confirm applies the write-confirmation rule to a batch reply (see the
// package doc, Writes): objErrs holds, per item, the error Weaviate
// reported for that object, nil for none. Where an object of a collection
// failed, no object of that collection in this request counts as stored:
// the collection's shard status decides what the failure was. confirm
// returns each item's result.
func (s *Store) confirm(ctx context.Context, items []*batchItem, objErrs []*Error) []error {
	out := make([]error, len(items))
	failed := map[string]bool{} // collections with an object Weaviate refused
	for i, e := range objErrs {
		if e != nil {
			out[i] = e
			if e.Kind == KindRejected {
				failed[items[i].obj.collection] = true
			}
		}
	}
	for collection := range failed {
		shards, e := s.shardStatus(ctx, collection)
		if e == nil {
			e = writable(collection, shards)
		}
		for i, it := range items {
			if it.obj.collection != collection {
				continue
			}
			switch {
			case e != nil: // the whole collection's writes failed: read-only, unreachable, refused key
				out[i] = e
			case objErrs[i] == nil:
				out[i] = &Error{Kind: KindUnconfirmed, Detail: "another object of the same batch request failed, and Weaviate reports a shard's failure on one object only"}
			}
		}
	}
	return out
}

// Check tells whether Weaviate can serve the worker at all, reads and
// writes: Ready (an authenticated call, the schema, the gRPC connection),
// and every shard of both collections writable (a read-only shard is
// KindReadOnly). It is the circuit breaker's half-open check: four small
// REST calls, made at most once per open period.
func (s *Store) Check(ctx context.Context) error {
	if err := s.Ready(ctx); err != nil {
		return err
	}
	for _, collection := range []string{MessagesCollection, StateCollection} {
		shards, e := s.shardStatus(ctx, collection)
		if e == nil {
			e = writable(collection, shards)
		}
		if e != nil {
			s.calls.failed.Add(1)
			return fmt.Errorf("weaviate check: %w", e)
		}
	}
	return nil
}
