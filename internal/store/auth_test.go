package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// TestAPIKey: against a server that requires a key, the right key works on
// every path (REST, GraphQL, gRPC); a wrong or missing key fails every call
// with a KindUnauthorized error that says so and never shows the key.
func TestAPIKey(t *testing.T) {
	t.Parallel()
	const key = "chatprep-test-key-3f9a1c"
	w := weaviatetest.Start(t, devstack.WeaviateOptions{APIKey: key})
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := testCtx(t, time.Minute)
			good := newStoreAt(t, w, b.grpc, func(c *Config) { c.APIKey = key })
			if err := good.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			chat := chatID(t)
			if err := good.Put(ctx, msg(chat, "e1", event.RoleUser, 0, "authenticated hello")); err != nil {
				t.Fatal(err)
			}
			if err := good.SetMuted(ctx, event.Event{EventID: "m", ChatID: chat, Type: event.TypeMute}); err != nil {
				t.Fatal(err)
			}
			if h, err := good.History(ctx, chat, event.RoleUser, t0, 5); err != nil || len(h) != 1 {
				t.Fatalf("history with the key: %v, %v", h, err)
			}
			if r, err := good.Relevant(ctx, chat, "authenticated", t0, 5); err != nil || len(r) != 1 {
				t.Fatalf("relevant with the key: %v, %v", r, err)
			}
			if m, err := good.Muted(ctx, chat, time.Now()); err != nil || !m {
				t.Fatalf("muted with the key: %v, %v", m, err)
			}
			if err := good.Ready(ctx); err != nil {
				t.Fatal(err)
			}

			for _, bad := range []struct{ name, key, says string }{
				{"wrong key", "not-the-" + key, "refused the API key"},
				{"no key", "", "none is configured"},
			} {
				st := newStoreAt(t, w, b.grpc, func(c *Config) { c.APIKey = bad.key })
				_, e1 := st.History(ctx, chat, event.RoleUser, t0, 5)
				_, e2 := st.Relevant(ctx, chat, "authenticated", t0, 5)
				_, e3 := st.Muted(ctx, chat, time.Now())
				e4 := st.Put(ctx, msg(chat, "e2", event.RoleUser, 1, "x"))
				e5 := st.SetMuted(ctx, event.Event{EventID: "m2", ChatID: chat, Type: event.TypeUnmute})
				e6 := st.Ready(ctx)
				e7 := st.EnsureSchema(ctx)
				for i, err := range []error{e1, e2, e3, e4, e5, e6, e7} {
					var se *Error
					if !errors.As(err, &se) || se.Kind != KindUnauthorized || se.Kind.Outage() || !se.Transient() {
						t.Errorf("%s, call %d: %v, want KindUnauthorized (not an outage; held, not the message's fault)", bad.name, i+1, err)
						continue
					}
					if msg := err.Error(); !strings.Contains(msg, bad.says) || strings.Contains(msg, key) {
						t.Errorf("%s, call %d: %q should say %q and never show the key", bad.name, i+1, msg, bad.says)
					}
				}
			}
		})
	}
}
