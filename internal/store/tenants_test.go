package store

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// TestTenantNames: names carry their index and count and read back; other
// names are not chatprep's.
func TestTenantNames(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]int{{0, 1}, {7, 64}, {63, 64}, {999, 1000}, {1000, 1001}} {
		name := tenantName(c[0], c[1])
		if i, n, ok := parseTenant(name); !ok || i != c[0] || n != c[1] {
			t.Errorf("%s reads back as %d of %d (%v)", name, i, n, ok)
		}
	}
	for _, name := range []string{"", "chats", "chats-1-of-64", "chats-064-of-064", "chats-001-of-064x", "t1", "chats--01-of-064"} {
		if _, _, ok := parseTenant(name); ok {
			t.Errorf("%q read as a tenant name", name)
		}
	}
}

// TestTenantSet: the layout is read from the names: complete, missing some,
// none, or not chatprep's.
func TestTenantSet(t *testing.T) {
	t.Parallel()
	all := (&facts{tenants: 4}).tenantNames()
	if n, missing, err := tenantSet(all); n != 4 || len(missing) != 0 || err != nil {
		t.Errorf("complete: %d, %v, %v", n, missing, err)
	}
	if n, missing, err := tenantSet([]string{all[3], all[0]}); n != 4 || !slices.Equal(missing, all[1:3]) || err != nil {
		t.Errorf("two of four: %d, missing %v, %v", n, missing, err)
	}
	if n, missing, err := tenantSet(nil); n != 0 || missing != nil || err != nil {
		t.Errorf("none: %d, %v, %v", n, missing, err)
	}
	for _, names := range [][]string{{all[0], "other"}, {all[0], tenantName(0, 8)}} {
		if _, _, err := tenantSet(names); KindOf(err) != KindSchema {
			t.Errorf("%v: %v, want KindSchema", names, err)
		}
	}
	if got, err := ChatTenant("c-1", all); err != nil || got != (&facts{tenants: 4}).tenant("c-1") {
		t.Errorf("ChatTenant: %q, %v", got, err)
	}
	if got, err := ChatTenant("c-1", nil); err != nil || got != "" {
		t.Errorf("ChatTenant without tenants: %q, %v", got, err)
	}
	if _, err := ChatTenant("c-1", all[:2]); err == nil {
		t.Error("ChatTenant on an incomplete set: no error")
	}
}

// TestMessageTenants: a chat's messages are in its tenant, every chat's in
// every tenant in order; without tenants, one request naming none.
func TestMessageTenants(t *testing.T) {
	t.Parallel()
	f := &facts{tenants: 4}
	if got := f.messageTenants("c-1"); !slices.Equal(got, []string{f.tenant("c-1")}) {
		t.Errorf("a chat: %v", got)
	}
	if got := f.messageTenants(""); !slices.Equal(got, f.tenantNames()) {
		t.Errorf("every chat: %v", got)
	}
	none := &facts{}
	for _, chat := range []string{"c-1", ""} {
		if got := none.messageTenants(chat); !slices.Equal(got, []string{""}) {
			t.Errorf("without tenants, %q: %v", chat, got)
		}
	}
}

// TestTenantSpread: chats spread evenly over the tenants, and a chat's
// tenant depends on nothing but its id and the count, the same in every
// version.
func TestTenantSpread(t *testing.T) {
	t.Parallel()
	const chats, n = 64_000, DefaultTenants
	per := make([]int, n)
	for c := range chats {
		per[tenantIndex(fmt.Sprintf("wa:+3460%07d", c), n)]++
	}
	lo, hi := slices.Min(per), slices.Max(per)
	if mean := chats / n; lo < mean*8/10 || hi > mean*12/10 {
		t.Errorf("chats per tenant from %d to %d, mean %d: not even", lo, hi, mean)
	}
	// Pinned: a stored chat's messages are where this says, so the hash
	// must never change.
	for chat, want := range map[string]string{"web:sess-7f3a9c": "chats-005-of-064", "wa:+34600111222": "chats-054-of-064", "bench:chat-0000": "chats-039-of-064"} {
		if got := (&facts{tenants: 64}).tenant(chat); got != want {
			t.Errorf("tenant of %s: %s, want %s", chat, got, want)
		}
	}
}

// TestTenants on a server of its own: a new collection gets DefaultTenants
// tenants, each chat's messages in its own tenant; a store that does not
// create the collection learns the tenants from it (whatever its own
// Config.Tenants); the scan walks every tenant; a missing tenant stops
// Ready until setup makes it again; a tenant that is not chatprep's is a
// schema error.
func TestTenants(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{})
	ctx := testCtx(t, 2*time.Minute)
	setup := newStoreAt(t, w, true, nil)
	if err := setup.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	names := tenantNamesAt(t, setup)
	if n, missing, err := tenantSet(names); n != DefaultTenants || len(missing) != 0 || err != nil {
		t.Fatalf("a new collection's tenants: %d, missing %v, %v", n, missing, err)
	}
	if err := setup.EnsureSchema(ctx); err != nil { // again: nothing to do
		t.Fatal(err)
	}
	if got := setup.Layout(); got != "messages in 64 tenants" {
		t.Errorf("Layout %q", got)
	}

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			// A worker's store: it learns 64 from the collection.
			st := newStoreAt(t, w, b.grpc, func(c *Config) { c.Tenants = 8 })
			if err := st.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			var evs []event.Event
			chats := make([]string, 6)
			for i := range chats {
				chats[i] = chatID(t)
				evs = append(evs, msg(chats[i], "u1", event.RoleUser, 0, "the invoice for the kegs"),
					msg(chats[i], "a1", event.RoleAssistant, 1, "sent it this morning"))
			}
			putAll(t, st, evs...)
			for _, chat := range chats {
				tenant, err := st.tenantOf(ctx, chat)
				if err != nil || tenant != (&facts{tenants: DefaultTenants}).tenant(chat) {
					t.Fatalf("tenant of %s: %q, %v", chat, tenant, err)
				}
				other := tenantName((tenantIndex(chat, DefaultTenants)+1)%DefaultTenants, DefaultTenants)
				if !objectIn(t, st, tenant, MessageID(chat, "u1")) || objectIn(t, st, other, MessageID(chat, "u1")) {
					t.Errorf("the message of %s is not in its tenant %s alone", chat, tenant)
				}
				h, err := st.History(ctx, chat, event.RoleAssistant, t0.Add(time.Hour), 5)
				if err != nil || len(h) != 1 || h[0].EventID != "a1" {
					t.Errorf("history of %s: %v, %v", chat, eventIDs(h), err)
				}
				r, err := st.Relevant(ctx, chat, "invoice", t0.Add(time.Hour), 5)
				if err != nil || len(r) != 1 || r[0].EventID != "u1" {
					t.Errorf("relevance of %s: %v, %v", chat, eventIDs(r), err)
				}
				if got := scanChat(t, st, chat); len(got) != 2 {
					t.Errorf("the scan found %d messages of %s, want 2", len(got), chat)
				}
			}
		})
	}

	// A tenant gone: no worker starts; setup makes it again.
	lost := names[5]
	body, _ := json.Marshal([]string{lost})
	if status, b, err := setup.restBody(ctx, http.MethodDelete, "/schema/"+MessagesCollection+"/tenants", body); err != nil || status != http.StatusOK {
		t.Fatalf("delete tenant %s: %d %s %v", lost, status, b, err)
	}
	worker := newStoreAt(t, w, true, nil)
	if err := worker.Ready(ctx); err == nil || KindOf(err) != KindRejected {
		t.Errorf("Ready with tenant %s gone: %v, want a rejection that says to run setup", lost, err)
	}
	if err := newStoreAt(t, w, true, nil).EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := worker.Ready(ctx); err != nil {
		t.Errorf("Ready after setup made %s again: %v", lost, err)
	}

	// A tenant chatprep did not make.
	body, _ = json.Marshal([]map[string]string{{"name": "someone-else"}})
	if status, b, err := setup.restBody(ctx, http.MethodPost, "/schema/"+MessagesCollection+"/tenants", body); err != nil || status != http.StatusOK {
		t.Fatalf("create a foreign tenant: %d %s %v", status, b, err)
	}
	if err := newStoreAt(t, w, true, nil).Ready(ctx); KindOf(err) != KindSchema {
		t.Errorf("Ready with a foreign tenant: %v, want KindSchema", err)
	}
}

// TestCollectionWithoutTenants: a messages collection made before
// multi-tenancy (Weaviate cannot turn it on later) keeps working: setup
// leaves it, and every call names no tenant.
func TestCollectionWithoutTenants(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{})
	ctx := testCtx(t, 2*time.Minute)
	old := newStoreAt(t, w, true, func(c *Config) { c.Tenants = -1 })
	if err := old.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	chat := chatID(t)
	putAll(t, old, msg(chat, "u1", event.RoleUser, 0, "where is my invoice"))
	today := newStoreAt(t, w, true, nil)
	if err := today.EnsureSchema(ctx); err != nil { // today's setup
		t.Fatal(err)
	}
	if got := today.Layout(); !strings.Contains(got, "without tenants") {
		t.Errorf("Layout %q, want it to say the collection has no tenants", got)
	}
	if names := tenantNamesAt(t, old); len(names) != 0 {
		t.Fatalf("setup gave the old collection tenants: %v", names)
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newStoreAt(t, w, b.grpc, nil)
			if err := st.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			putAll(t, st, msg(chat, "a-"+b.name, event.RoleAssistant, 1, "here is the invoice"))
			if r, err := st.Relevant(ctx, chat, "invoice", t0.Add(time.Hour), 5); err != nil || len(r) < 2 {
				t.Errorf("relevance: %v, %v", eventIDs(r), err)
			}
			ms := scanChat(t, st, chat)
			if len(ms) < 2 {
				t.Fatalf("scan: %d messages", len(ms))
			}
			if missing, err := st.Unfindable(ctx, chat, ms); err != nil || len(missing) != 0 {
				t.Errorf("unfindable: %v, %v", missing, err)
			}
			if err := st.Reindex(ctx, chat, ms[0].ID); err != nil {
				t.Errorf("reindex: %v", err)
			}
		})
	}
}

// tenantNamesAt lists the messages collection's tenants (none: empty).
func tenantNamesAt(t *testing.T, st *Store) []string {
	t.Helper()
	status, body, err := st.rest(testCtx(t, 10*time.Second), http.MethodGet, "/schema/"+MessagesCollection+"/tenants")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		return nil // 422: not multi-tenant
	}
	var ts []struct{ Name string }
	if err := json.Unmarshal(body, &ts); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ts))
	for i, x := range ts {
		out[i] = x.Name
	}
	slices.Sort(out)
	return out
}

// objectIn tells whether the message object id is in tenant.
func objectIn(t *testing.T, st *Store, tenant, id string) bool {
	t.Helper()
	status, _, err := st.rest(testCtx(t, 10*time.Second), http.MethodGet, "/objects/"+MessagesCollection+"/"+id+"?tenant="+url.QueryEscape(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return status == http.StatusOK
}
