package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// SetShardStatus sets every shard of collection to status ("READONLY" or
// "READY") through Weaviate's REST API, PUT /v1/schema/{collection}/shards/{shard}:
// what an operator does, and what Weaviate does by itself to a shard when
// its disk passes DISK_USE_READONLY_PERCENTAGE. key is the API key to send,
// "" for none. It returns the shards' names.
func (w *Weaviate) SetShardStatus(ctx context.Context, collection, status, key string) ([]string, error) {
	var shards []struct {
		Name string `json:"name"`
	}
	if err := w.call(ctx, http.MethodGet, "/v1/schema/"+url.PathEscape(collection)+"/shards", key, nil, &shards); err != nil {
		return nil, fmt.Errorf("list shards of %s: %w", collection, err)
	}
	names := make([]string, 0, len(shards))
	for _, sh := range shards {
		body := map[string]string{"status": status}
		if err := w.call(ctx, http.MethodPut, "/v1/schema/"+url.PathEscape(collection)+"/shards/"+url.PathEscape(sh.Name), key, body, nil); err != nil {
			return names, fmt.Errorf("set shard %s of %s %s: %w", sh.Name, collection, status, err)
		}
		names = append(names, sh.Name)
	}
	return names, nil
}

// CreateDBUser creates a database user (WeaviateOptions.DBUsers) with the
// admin role and returns the API key Weaviate made for it; rootKey is
// WeaviateOptions.APIKey.
func (w *Weaviate) CreateDBUser(ctx context.Context, rootKey, user string) (string, error) {
	var created struct {
		APIKey string `json:"apikey"`
	}
	if err := w.call(ctx, http.MethodPost, "/v1/users/db/"+url.PathEscape(user), rootKey, nil, &created); err != nil {
		return "", fmt.Errorf("create database user %s: %w", user, err)
	}
	assign := map[string]any{"roles": []string{"admin"}, "userType": "db"}
	if err := w.call(ctx, http.MethodPost, "/v1/authz/users/"+url.PathEscape(user)+"/assign", rootKey, assign, nil); err != nil {
		return "", fmt.Errorf("give database user %s the admin role: %w", user, err)
	}
	return created.APIKey, nil
}

// SetDBUserActive deactivates a database user, keeping its key (Weaviate
// then refuses the key with 401, as it refuses a rotated key), or activates
// it again (the same key works again).
func (w *Weaviate) SetDBUserActive(ctx context.Context, rootKey, user string, active bool) error {
	if active {
		return w.call(ctx, http.MethodPost, "/v1/users/db/"+url.PathEscape(user)+"/activate", rootKey, nil, nil)
	}
	return w.call(ctx, http.MethodPost, "/v1/users/db/"+url.PathEscape(user)+"/deactivate", rootKey,
		map[string]bool{"revoke_key": false}, nil)
}

// call sends one REST request with a JSON body (nil for none) and decodes a
// 2xx answer into out (nil: ignored).
func (w *Weaviate) call(ctx context.Context, method, path, key string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// HoldWritesEnv keeps Weaviate's writes in its memtables and their
// write-ahead logs for an hour instead of flushing them within seconds
// (TunedEnv): for CrashLosingLog.
var HoldWritesEnv = []string{
	"PERSISTENCE_MEMTABLES_MAX_ACTIVE_DURATION_SECONDS=3600",
	"PERSISTENCE_MEMTABLES_MIN_ACTIVE_DURATION_SECONDS=3600",
	"PERSISTENCE_MEMTABLES_FLUSH_DIRTY_AFTER_SECONDS=3600",
}

// CrashLosingLog SIGKILLs the server, removes the write-ahead logs of the
// inverted index of one property of collection (its LSM bucket
// property_<name>), and starts it again: the property's index entries of
// every write still in the memtables are gone, while the objects (their own
// bucket's log intact) are all there. That is how a crash can tear an index
// from its objects: each bucket recovers its own log. Start the server with
// HoldWritesEnv so the writes are still in the logs. It returns how many
// logs it removed (0: nothing was lost).
func (w *Weaviate) CrashLosingLog(ctx context.Context, collection, property string) (int, error) {
	w.Kill()
	logs, err := filepath.Glob(filepath.Join(w.opts.DataDir, "data", strings.ToLower(collection), "*", "lsm", "property_"+property, "*.wal"))
	if err != nil {
		return 0, err
	}
	for _, f := range logs {
		if err := os.Remove(f); err != nil {
			return 0, fmt.Errorf("remove %s: %w", f, err)
		}
	}
	return len(logs), w.Restart(ctx)
}
