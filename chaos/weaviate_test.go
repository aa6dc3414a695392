package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/chatprep/chatprep/internal/store"
)

// weaviateReader reads what the workers stored, straight from the Weaviate
// server (not through the scenario's proxies).
type weaviateReader struct {
	url, key string
	client   *http.Client
}

func newWeaviateReader(url, key string) *weaviateReader {
	return &weaviateReader{url: url, key: key, client: &http.Client{Timeout: 10 * time.Second}}
}

func (w *weaviateReader) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if w.key != "" {
		req.Header.Set("Authorization", "Bearer "+w.key)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stored tells whether the message object of (chat, event) exists and
// holds that chat and event.
func (w *weaviateReader) stored(ctx context.Context, chat, eventID string) (bool, error) {
	status, body, err := w.do(ctx, http.MethodGet, "/v1/objects/"+store.MessagesCollection+"/"+store.MessageID(chat, eventID), nil)
	switch {
	case err != nil:
		return false, err
	case status == http.StatusNotFound:
		return false, nil
	case status != http.StatusOK:
		return false, fmt.Errorf("get object of %s: status %d: %s", eventID, status, body)
	}
	var obj struct {
		Properties struct {
			ChatID  string `json:"chat_id"`
			EventID string `json:"event_id"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return false, err
	}
	if obj.Properties.ChatID != chat || obj.Properties.EventID != eventID {
		return false, fmt.Errorf("object of %s holds chat %q event %q", eventID, obj.Properties.ChatID, obj.Properties.EventID)
	}
	return true, nil
}

// count is the number of message objects of a chat.
func (w *weaviateReader) count(ctx context.Context, chat string) (int, error) {
	q := fmt.Sprintf(`{ Aggregate { %s(where: {path: ["chat_id"], operator: Equal, valueText: %s}) { meta { count } } } }`,
		store.MessagesCollection, strconv.Quote(chat))
	b, _ := json.Marshal(map[string]string{"query": q})
	status, body, err := w.do(ctx, http.MethodPost, "/v1/graphql", b)
	if err != nil {
		return 0, err
	}
	var out struct {
		Data struct {
			Aggregate map[string][]struct {
				Meta struct {
					Count int `json:"count"`
				} `json:"meta"`
			} `json:"Aggregate"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("aggregate: status %d: %s", status, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, err
	}
	if len(out.Errors) > 0 {
		return 0, fmt.Errorf("aggregate: %s", out.Errors[0].Message)
	}
	rows := out.Data.Aggregate[store.MessagesCollection]
	if len(rows) != 1 {
		return 0, fmt.Errorf("aggregate: %d rows", len(rows))
	}
	return rows[0].Meta.Count, nil
}

// missing returns the events of l that are not stored, and the chats whose
// object count is not their number of events ("no extra objects").
func (w *weaviateReader) missing(ctx context.Context, l *load) (notStored []string, badChats []string, err error) {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		work = make(chan *ev)
	)
	for range 8 {
		wg.Go(func() {
			for e := range work {
				ok, err := w.stored(ctx, e.chat, e.id)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if !ok {
					notStored = append(notStored, e.id)
				}
				mu.Unlock()
			}
		})
	}
	perChat := map[string]int{}
	for _, e := range l.events {
		if e.kind != poisonMsg {
			perChat[e.chat]++
			work <- e
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return nil, nil, errs[0]
	}
	for _, chat := range l.chats {
		n, err := w.count(ctx, chat)
		if err != nil {
			return nil, nil, err
		}
		if n != perChat[chat] {
			badChats = append(badChats, fmt.Sprintf("%s holds %d objects, want %d", chat, n, perChat[chat]))
		}
	}
	return notStored, badChats, nil
}
