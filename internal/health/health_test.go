package health_test

import (
	"encoding/json"
	"net/http"
	"testing"

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

func TestReadiness(t *testing.T) {
	t.Parallel()
	s, err := health.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz before ready = %d, want 503", code)
	}
	s.SetReady(true)
	s.SetDetail(func() map[string]any { return map[string]any{"weaviate": "circuit open"} })
	code, body := get(t, base+"/readyz")
	if code != 200 || body["weaviate"] != "circuit open" || body["status"] != "ready" {
		t.Errorf("/readyz = %d %v", code, body)
	}
	s.SetReady(false)
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz while draining = %d, want 503", code)
	}
}
