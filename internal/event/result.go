package event

import "time"

// Result is the response queue message body for one user message.
type Result struct {
	EventID     string           `json:"event_id"`
	ChatID      string           `json:"chat_id"`
	Route       string           `json:"route"`
	Muted       bool             `json:"muted"`
	History     []ContextMessage `json:"history"`  // user and assistant, oldest first; never nil
	Relevant    []ContextMessage `json:"relevant"` // best first; never nil
	Degraded    []Degradation    `json:"degraded"` // never nil
	TimingsMS   Timings          `json:"timings_ms"`
	Worker      string           `json:"worker"`
	ProcessedAt time.Time        `json:"processed_at"`
}

// ContextMessage is one earlier message of the chat given as context.
type ContextMessage struct {
	EventID string    `json:"event_id"`
	Role    Role      `json:"role"`
	Text    string    `json:"text"`
	SentAt  time.Time `json:"sent_at"`
	Score   *float64  `json:"score,omitempty"` // relevance score, for relevant messages only
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
	RelevanceSearch float64 `json:"relevance_search"` // relevance search
	MutedStatus     float64 `json:"muted_status"`     // muted state lookup
	Store           float64 `json:"store"`            // storing the message
	Preprocessing   float64 `json:"preprocessing"`    // all tasks, start to combined
	Total           float64 `json:"total"`            // received to result ready for publishing (it travels in the result)
}
