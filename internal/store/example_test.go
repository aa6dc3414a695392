package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/rs/zerolog"
)

// A worker builds one Store at start, creates the collections (normally
// `worker setup` does), and shares the Store between all its goroutines.
func Example() {
	st, err := store.New(store.Config{
		URL:      "http://127.0.0.1:8080",
		APIKey:   os.Getenv("WEAVIATE_API_KEY"),
		GRPCAddr: "127.0.0.1:50051",
		Logger:   zerolog.New(os.Stdout),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close() // sends what Put still holds, closes connections

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.EnsureSchema(ctx); err != nil {
		fmt.Println(err)
		return
	}
	ev := event.Event{EventID: "e-1042", ChatID: "c-77", Role: event.RoleUser,
		Text: "Where is my invoice INV/2026/00017?", SentAt: time.Now()}
	if err := st.Put(ctx, ev); err != nil {
		fmt.Println(err)
		return
	}
	history, err := st.History(ctx, ev.ChatID, event.RoleUser, ev.SentAt, 10)
	if store.IsOutage(err) {
		// Weaviate is down, overloaded or slow: degrade, retry later.
	}
	var se *store.Error
	if errors.As(err, &se) && se.Kind == store.KindUnauthorized {
		fmt.Println("fix WEAVIATE_API_KEY:", err)
	}
	relevant, _ := st.Relevant(ctx, ev.ChatID, ev.Text, ev.SentAt, 5)
	muted, _ := st.Muted(ctx, ev.ChatID, time.Now())
	fmt.Println(len(history), len(relevant), muted)
}
