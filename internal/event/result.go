package event

import "time"

// Result is the response queue message body for one user message.
type Result struct {
	EventID  string           `json:"event_id"`
	ChatID   string           `json:"chat_id"`
	Route    string           `json:"route"`
	Muted    bool             `json:"muted"`
	History  []ContextMessage `json:"history"`  // user and assistant, oldest first; never nil
	Relevant []ContextMessage `json:"relevant"` // passages, best first; never nil
	Tokens   Tokens           `json:"tokens"`
	// Burst are the event ids of the chat's earlier user messages of this
	// event's burst, oldest first, each also in History; never nil.
	Burst []string `json:"burst"`
	// SupersededBy is the newest user message of the chat that was already
	// received when this result was made and whose burst holds this event;
	// empty (absent) otherwise.
	SupersededBy string        `json:"superseded_by,omitempty"`
	References   []Reference   `json:"references"` // newest mention first; never nil
	Degraded     []Degradation `json:"degraded"`   // never nil
	TimingsMS    Timings       `json:"timings_ms"`
	Worker       string        `json:"worker"`
	ProcessedAt  time.Time     `json:"processed_at"`
}

// ContextMessage is one earlier message of the chat given as context.
type ContextMessage struct {
	EventID string    `json:"event_id"`
	Role    Role      `json:"role"`
	Text    string    `json:"text"`
	SentAt  time.Time `json:"sent_at"`
	Score   *float64  `json:"score,omitempty"` // relevance score, for a passage's hit only
	// With is the event id of the passage's hit that this message follows
	// (RELEVANCE_NEIGHBOURS), for a relevant message that is not a hit.
	With string `json:"with,omitempty"`
	// Tokens is the text's length in TOKEN_ENCODING tokens, 0 when not
	// known yet; not part of the result (its sums are Result.Tokens).
	Tokens int `json:"-"`
}

// Tokens are the lengths of a result's texts in TOKEN_ENCODING tokens.
type Tokens struct {
	History  int `json:"history"`  // all history texts
	Relevant int `json:"relevant"` // all relevant texts
	Event    int `json:"event"`    // the event's own text
}

// Reference is one ERP document a chat's messages mention (CONTRACT.md):
// the newest message that mentions it.
type Reference struct {
	Ref     string    `json:"ref"`
	Kind    string    `json:"kind"`
	EventID string    `json:"event_id"`
	SentAt  time.Time `json:"sent_at"`
}

// Degradation names a preprocessing task that failed or timed out.
type Degradation struct {
	Task  string `json:"task"`
	Error string `json:"error"`
}

// Timings are the durations of one message's preprocessing, in milliseconds.
// They are the structured successors of the old Lambda's `[TIMING]` lines.
type Timings struct {
	MessageHistory  float64 `json:"message_history"`  // user + assistant history
	RelevanceSearch float64 `json:"relevance_search"` // relevance search, with the passages' neighbours
	MutedStatus     float64 `json:"muted_status"`     // muted state lookup
	Store           float64 `json:"store"`            // storing the message
	Preprocessing   float64 `json:"preprocessing"`    // all tasks, start to combined
	Total           float64 `json:"total"`            // received to result ready for publishing (it travels in the result)
}
