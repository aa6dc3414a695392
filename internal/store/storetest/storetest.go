package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/store"
)

// Reader reads what the worker stored, over Weaviate's REST API directly
// (not through the worker's store package). Key is the API key, for a
// server that wants one.
type Reader struct {
	URL string
	Key string
}

var weaviateClient = &http.Client{Timeout: 10 * time.Second}

func (w Reader) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if w.Key != "" {
		req.Header.Set("Authorization", "Bearer "+w.Key)
	}
	resp, err := weaviateClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// tenant is the tenant of the messages collection that holds chatID's
// messages ("" without tenants), from the collection's tenants.
func (w Reader) tenant(ctx context.Context, chatID string) (string, error) {
	status, b, err := w.do(ctx, http.MethodGet, "/v1/schema/"+store.MessagesCollection+"/tenants", nil)
	if err != nil {
		return "", fmt.Errorf("list tenants: %w", err)
	}
	var ts []struct{ Name string }
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &ts); err != nil {
			return "", fmt.Errorf("list tenants: %w", err)
		}
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return store.ChatTenant(chatID, names) // no tenants (a 422 too): ""
}

// Count returns the number of the chat's message objects.
func (w Reader) Count(ctx context.Context, chatID string) (int, error) {
	return w.CountIn(ctx, store.MessagesCollection, chatID)
}

// CountIn returns the number of the chat's objects in collection (by
// their chat_id), in the chat's tenant when the collection is the
// messages collection and has tenants.
func (w Reader) CountIn(ctx context.Context, collection, chatID string) (int, error) {
	args := ""
	if collection == store.MessagesCollection {
		tenant, err := w.tenant(ctx, chatID)
		if err != nil {
			return 0, fmt.Errorf("count stored messages: %w", err)
		}
		if tenant != "" {
			args = fmt.Sprintf("tenant:%q,", tenant)
		}
	}
	q := fmt.Sprintf(`{Aggregate{%s(%swhere:{path:["chat_id"],operator:Equal,valueText:%q}){meta{count}}}}`, collection, args, chatID)
	body, _ := json.Marshal(map[string]string{"query": q})
	status, b, err := w.do(ctx, http.MethodPost, "/v1/graphql", body)
	if err != nil {
		return 0, fmt.Errorf("count stored messages: %w", err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("count stored messages: status %d: %s", status, b)
	}
	var out struct {
		Data struct {
			Aggregate map[string][]struct {
				Meta struct{ Count int }
			}
		}
		Errors []struct{ Message string }
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("count stored messages: %w", err)
	}
	if len(out.Errors) > 0 {
		return 0, fmt.Errorf("count stored messages: %s", out.Errors[0].Message)
	}
	agg := out.Data.Aggregate[collection]
	if len(agg) != 1 {
		return 0, fmt.Errorf("count stored messages: %d groups", len(agg))
	}
	return agg[0].Meta.Count, nil
}

// Get returns the properties of an event's stored message, fetched by its
// deterministic id (nil when there is none).
func (w Reader) Get(ctx context.Context, chatID, eventID string) (map[string]any, error) {
	tenant, err := w.tenant(ctx, chatID)
	if err != nil {
		return nil, fmt.Errorf("get stored message of %s: %w", eventID, err)
	}
	path := "/v1/objects/" + store.MessagesCollection + "/" + store.MessageID(chatID, eventID)
	if tenant != "" {
		path += "?tenant=" + url.QueryEscape(tenant)
	}
	status, b, err := w.do(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("get stored message of %s: %w", eventID, err)
	case status == http.StatusNotFound:
		return nil, nil
	case status != http.StatusOK:
		return nil, fmt.Errorf("get stored message of %s: status %d: %s", eventID, status, b)
	}
	var obj struct{ Properties map[string]any }
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("get stored message of %s: %w", eventID, err)
	}
	return obj.Properties, nil
}

// Exists tells whether an object of collection with id is stored (a GET by
// its id, naming no tenant: for the state collection; a message is Get's).
func (w Reader) Exists(ctx context.Context, collection, id string) (bool, error) {
	status, b, err := w.do(ctx, http.MethodGet, "/v1/objects/"+collection+"/"+id, nil)
	switch {
	case err != nil:
		return false, fmt.Errorf("get object %s: %w", id, err)
	case status == http.StatusNotFound:
		return false, nil
	case status != http.StatusOK:
		return false, fmt.Errorf("get object %s: status %d: %s", id, status, b)
	}
	return true, nil
}

// Stored counts the chat's message objects (Count; a failure fails t).
func (w Reader) Stored(t testing.TB, chatID string) int {
	t.Helper()
	n, err := w.Count(t.Context(), chatID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Object is Get; a failure fails t.
func (w Reader) Object(t testing.TB, chatID, eventID string) map[string]any {
	t.Helper()
	props, err := w.Get(t.Context(), chatID, eventID)
	if err != nil {
		t.Fatal(err)
	}
	return props
}
