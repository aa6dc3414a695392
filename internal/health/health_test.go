package health_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/health"
)

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func notReached(body map[string]any) []string {
	var names []string
	list, _ := body["not_reached"].([]any)
	for _, n := range list {
		names = append(names, n.(string))
	}
	return names
}

// TestReadiness walks /readyz through a worker's life: not ready naming
// both dependencies, then the one left, ready once both were reached
// (whatever happens to them afterwards), stopping after Stop.
func TestReadiness(t *testing.T) {
	t.Parallel()
	s, err := health.Listen("127.0.0.1:0", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	weaviate, queue := s.Require("weaviate"), s.Require("input_queue")
	s.SetDetail(func() map[string]any { return map[string]any{"breaker": "open"} })
	done := make(chan error)
	go func() { done <- s.Serve() }()
	defer func() {
		s.Shutdown(t.Context())
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + s.Addr()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}

	weaviate.Waiting("connection refused")
	code, body := get(t, base+"/readyz")
	if code != 503 || body["status"] != health.StatusNotReady || !slices.Equal(notReached(body), []string{"weaviate", "input_queue"}) {
		t.Errorf("before anything is reached: %d %v", code, body)
	}
	if w, _ := body["weaviate"].(map[string]any); w["reached"] != false || w["waiting"] != "connection refused" {
		t.Errorf("weaviate's state %v, want not reached with the reason", body["weaviate"])
	}

	weaviate.Reach()
	weaviate.Reach() // idempotent
	select {
	case <-weaviate.Reached():
	default:
		t.Error("Reached not closed after Reach")
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !slices.Equal(notReached(body), []string{"input_queue"}) {
		t.Errorf("weaviate reached, the queue not: %d %v", code, body)
	}

	queue.Reach()
	code, body = get(t, base+"/readyz")
	if code != 200 || body["status"] != health.StatusReady || body["breaker"] != "open" || body["not_reached"] != nil {
		t.Errorf("both reached: %d %v", code, body)
	}

	s.Stop()
	if code, body := get(t, base+"/readyz"); code != 503 || body["status"] != health.StatusStopping {
		t.Errorf("after Stop: %d %v", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz after Stop = %d", code)
	}
}
