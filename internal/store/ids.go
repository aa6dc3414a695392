package store

import "github.com/google/uuid"

// Namespaces of the deterministic (version 5) object ids. Fixed forever:
// changing them would make every redelivered event a second object.
var (
	messageNamespace = uuid.MustParse("6f0c5a0e-2b7e-4c1a-9d35-8a3f1c2e7b10")
	stateNamespace   = uuid.MustParse("0d9b7c43-5e61-4f2a-b8c4-3e1f6a9d2c57")
	entryNamespace   = uuid.MustParse("b3e5a0f2-7c41-4d8e-9a26-51f0c8d3e7a4")
)

// MessageID is the Weaviate object id of a chat's message event: the same for
// every delivery of the event, different for every (chat, event) pair.
func MessageID(chatID, eventID string) string {
	return uuid.NewSHA1(messageNamespace, idPair(chatID, eventID)).String()
}

// idPair joins the ids with a NUL, which cannot occur in either, so ("a",
// "bc") and ("ab", "c") never share an id.
func idPair(chatID, eventID string) []byte {
	b := make([]byte, 0, len(chatID)+1+len(eventID))
	b = append(b, chatID...)
	b = append(b, 0)
	return append(b, eventID...)
}

// StateID is the Weaviate object id of a chat's state head: the object
// that says the chat has mute or unmute entries (see state.go), or, written
// by older versions, the chat's state itself.
func StateID(chatID string) string {
	return uuid.NewSHA1(stateNamespace, []byte(chatID)).String()
}

// StateEntryID is the Weaviate object id of one mute or unmute event of a
// chat: the same for every delivery of the event.
func StateEntryID(chatID, eventID string) string {
	return uuid.NewSHA1(entryNamespace, idPair(chatID, eventID)).String()
}
