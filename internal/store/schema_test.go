package store

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
)

// TestEnsureSchema runs on a server of its own: its subtests create, break
// and delete the collections, in order.
func TestEnsureSchema(t *testing.T) {
	t.Parallel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{})
	a := newStoreAt(t, w, true, nil)
	b := newStoreAt(t, w, false, nil)
	dropAll := func(t *testing.T) {
		t.Helper()
		ctx := testCtx(t, 30*time.Second)
		for _, c := range []string{MessagesCollection, StateCollection} {
			if err := a.client.Schema().ClassDeleter().WithClassName(c).Do(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("concurrent creation by two stores", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Add(1)
			go func() { defer wg.Done(); errs <- st.EnsureSchema(ctx) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		checkSchema(t, a)
		// And again, one after the other: nothing to do, no error.
		for range 2 {
			if err := a.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
		}
		checkSchema(t, a)
		// Ready now (the collections exist).
		if err := a.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("missing collections", func(t *testing.T) {
		dropAll(t)
		ctx := testCtx(t, 30*time.Second)
		// No chat can have been muted without the state collection.
		if muted, err := a.Muted(ctx, "c", time.Now()); muted || err != nil {
			t.Errorf("Muted without collections: %v, %v; want false, nil", muted, err)
		}
		if _, err := a.History(ctx, "c", "user", time.Now(), 3); KindOf(err) != KindRejected {
			t.Errorf("History without collections: %v, want KindRejected", err)
		}
		if _, err := b.Relevant(ctx, "c", "invoice", time.Now(), 3); KindOf(err) != KindRejected {
			t.Errorf("Relevant without collections: %v, want KindRejected", err)
		}
		if err := a.Ready(ctx); err == nil || !strings.Contains(err.Error(), "worker setup") {
			t.Errorf("Ready without collections: %v, want a hint to run setup", err)
		}
		if err := a.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("lost creation race", func(t *testing.T) {
		dropAll(t)
		ctx := testCtx(t, 30*time.Second)
		racer := newStoreAt(t, w, false, nil)
		racer.testHookBeforeCreate = func(class string) {
			// Another process creates the collection first; ours then gets
			// 422 "already exists".
			c := MessagesClass()
			if class == StateCollection {
				c = StateClass()
			}
			if err := a.client.Schema().ClassCreator().WithClass(c).Do(ctx); err != nil {
				t.Error(err)
			}
		}
		if err := racer.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		if s := racer.Stats(); s.Failed != 2 {
			t.Errorf("stats %+v: want the 2 refused creates counted as failed calls", s)
		}
		checkSchema(t, a)
	})

	t.Run("adds missing properties", func(t *testing.T) {
		dropAll(t)
		ctx := testCtx(t, 30*time.Second)
		old := MessagesClass()
		old.Properties = slicesDelete(old.Properties, propUserID, propChatTerms)
		if err := a.client.Schema().ClassCreator().WithClass(old).Do(ctx); err != nil {
			t.Fatal(err)
		}
		// A worker of this version does not start on the old collection:
		// its first write would have Weaviate's auto-schema add chat_terms
		// with the wrong tokenization.
		err := a.Ready(ctx)
		if KindOf(err) != KindSchema {
			t.Fatalf("Ready on a collection without %s: %v, want KindSchema", propChatTerms, err)
		}
		for _, want := range []string{propUserID, propChatTerms, "worker setup"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Ready: %q does not say %q", err, want)
			}
		}
		// Two stores race to add the same properties.
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, st := range []*Store{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- st.EnsureSchema(ctx) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		checkSchema(t, a)
		if err := a.Ready(ctx); err != nil {
			t.Errorf("Ready after EnsureSchema added the properties: %v", err)
		}
	})

	t.Run("state collection of an older version", func(t *testing.T) {
		dropAll(t)
		ctx := testCtx(t, 30*time.Second)
		if err := a.client.Schema().ClassCreator().WithClass(MessagesClass()).Do(ctx); err != nil {
			t.Fatal(err)
		}
		old := StateClass()
		old.Properties = slicesDelete(old.Properties, propSentAt)
		if err := a.client.Schema().ClassCreator().WithClass(old).Do(ctx); err != nil {
			t.Fatal(err)
		}
		// Its mutes would be written without the property they are ordered by.
		if err := a.Ready(ctx); KindOf(err) != KindSchema || !strings.Contains(err.Error(), propSentAt) {
			t.Fatalf("Ready on a state collection without %s: %v, want KindSchema naming it", propSentAt, err)
		}
		if err := a.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Ready(ctx); err != nil {
			t.Errorf("Ready after EnsureSchema added %s: %v", propSentAt, err)
		}
	})

	t.Run("text searchable, from before issue 22", func(t *testing.T) {
		dropAll(t)
		ctx := testCtx(t, 30*time.Second)
		old := MessagesClass()
		findProperty(old, propText).IndexSearchable = ptr(true)
		old.MultiTenancyConfig = nil // before issue 18 too
		for _, c := range []*models.Class{old, StateClass()} {
			if err := a.client.Schema().ClassCreator().WithClass(c).Do(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		st := newStoreAt(t, w, false, func(c *Config) { c.Logger = zerolog.New(&logs) })
		if err := st.Ready(ctx); err != nil {
			t.Errorf("Ready on a collection whose text is searchable: %v", err)
		}
		if err := st.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"level":"warn"`, `"property":"text"`, "no vectorizer", "/v1/schema/" + MessagesCollection + "/properties/text/index/searchable"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("EnsureSchema's log %q does not say %q", logs.String(), want)
			}
		}
		// It still works: a message is stored and found.
		chat := chatID(t)
		putAll(t, st, msg(chat, "e-1", event.RoleUser, 0, "my invoice is overdue"))
		if got, err := st.Relevant(ctx, chat, "overdue invoice", t0.Add(time.Hour), 5); err != nil || len(got) != 1 {
			t.Errorf("Relevant: %v, %v", eventIDs(got), err)
		}
		dropAll(t)
		if err := st.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		if have, err := st.getClass(ctx, MessagesCollection); err != nil || isTrue(findProperty(have, propText).IndexSearchable) {
			t.Errorf("a new collection's text is searchable (%v)", err)
		}
	})

	conflicts := []struct {
		name   string
		edit   func(p *models.Property)
		prop   string
		expect string
	}{
		{"id with word tokenization", func(p *models.Property) { p.Tokenization = tokenWord }, propChatID, `tokenization "word"`},
		{"date stored as text", func(p *models.Property) {
			p.DataType, p.Tokenization, p.IndexRangeFilters = []string{typeText}, tokenField, nil
		}, propSentAt, "is text, chatprep needs date"},
		{"chat terms not searchable", func(p *models.Property) { p.IndexSearchable = ptr(false) }, propChatTerms, "not searchable"},
	}
	for _, c := range conflicts {
		t.Run("conflict: "+c.name, func(t *testing.T) {
			dropAll(t)
			ctx := testCtx(t, 30*time.Second)
			bad := MessagesClass()
			for _, p := range bad.Properties {
				if p.Name == c.prop {
					c.edit(p)
				}
			}
			if err := a.client.Schema().ClassCreator().WithClass(bad).Do(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.Ready(ctx); KindOf(err) != KindSchema || !strings.Contains(err.Error(), c.expect) {
				t.Errorf("Ready: %v, want a KindSchema error saying %q", err, c.expect)
			}
			err := a.EnsureSchema(ctx)
			var se *Error
			if !errors.As(err, &se) || se.Kind != KindSchema {
				t.Fatalf("EnsureSchema: %v, want a KindSchema error", err)
			}
			for _, want := range []string{c.prop, c.expect, "worker setup", MessagesCollection} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func slicesDelete(ps []*models.Property, names ...string) []*models.Property {
	out := ps[:0]
	for _, p := range ps {
		keep := true
		for _, n := range names {
			keep = keep && p.Name != n
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

// checkSchema compares the server's collections with chatprep's schema.
func checkSchema(t *testing.T, st *Store) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	for _, want := range []*models.Class{MessagesClass(), StateClass()} {
		have, err := st.getClass(ctx, want.Class)
		if err != nil || have == nil {
			t.Fatalf("collection %s: %v", want.Class, err)
		}
		if have.Vectorizer != "none" {
			t.Errorf("%s vectorizer %q", want.Class, have.Vectorizer)
		}
		if len(have.Properties) != len(want.Properties) {
			t.Errorf("%s has %d properties, want %d", want.Class, len(have.Properties), len(want.Properties))
		}
		for _, wp := range want.Properties {
			hp := findProperty(have, wp.Name)
			if hp == nil {
				t.Errorf("%s lacks %s", want.Class, wp.Name)
				continue
			}
			if c, w := compareProperty(wp, hp); c != "" || w != "" {
				t.Errorf("%s.%s: %s %s", want.Class, wp.Name, c, w)
			}
			if wp.Tokenization == tokenField && isTrue(hp.IndexSearchable) {
				t.Errorf("%s.%s is BM25-searchable", want.Class, wp.Name)
			}
		}
	}
}
