package store

import "github.com/google/uuid"

// Namespaces of the deterministic (version 5) object ids. Fixed forever:
// changing them would make every redelivered event a second object.
var (
	messageNamespace = uuid.MustParse("6f0c5a0e-2b7e-4c1a-9d35-8a3f1c2e7b10")
	stateNamespace   = uuid.MustParse("0d9b7c43-5e61-4f2a-b8c4-3e1f6a9d2c57")
)

// MessageID is the Weaviate object id of a chat's message event: the same for
// every delivery of the event, different for every (chat, event) pair.
func MessageID(chatID, eventID string) string {
	// The NUL separator cannot occur in either id, so ("a", "bc") and
	// ("ab", "c") never share an id.
	b := make([]byte, 0, len(chatID)+1+len(eventID))
	b = append(b, chatID...)
	b = append(b, 0)
	b = append(b, eventID...)
	return uuid.NewSHA1(messageNamespace, b).String()
}

// StateID is the Weaviate object id of a chat's state (its muted flag).
func StateID(chatID string) string {
	return uuid.NewSHA1(stateNamespace, []byte(chatID)).String()
}
