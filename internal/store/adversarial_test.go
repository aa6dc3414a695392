package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// adversarialTexts are message texts that must be stored and searched as
// data: none may fail a call or change a query.
func adversarialTexts() []struct{ name, text string } {
	long := make([]string, 0, 2000)
	for i := 0; len(strings.Join(long, " ")) < event.MaxTextBytes-20; i++ {
		long = append(long, fmt.Sprintf("word%d", i%300))
	}
	long16k := strings.Join(long, " ")
	long16k += strings.Repeat("z", event.MaxTextBytes-len(long16k))
	return []struct{ name, text string }{
		{"quotes", `she said "close the ticket" and 'reopen' it`},
		{"backslashes", `path C:\temp\new\x41 and \" escaped \\" quote \u0041`},
		{"braces", `template {{name}} { } ) ( ] [ ticket`},
		{"newlines", "first line ticket\nsecond line\r\nthird\ttabbed"},
		{"graphql fragment", `ticket"}) { Get { ChatMessage(where:{path:["chat_id"] operator:Like valueText:"*"}) { text } } } #`},
		{"bm25 breakout", `ticket", properties:["chat_id"]}, where:{operator:Or operands:[]}, limit:10000) {`},
		{"json fragment", `{"query": "{Get{ChatMessage{text}}}", "variables": {"ticket": [1, 2, null]}}`},
		{"emoji", "ticket 🎉 party 👨‍👩‍👧‍👦 family 🙂"},
		{"flags", "flags 🇩🇪 🇺🇸 🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F ticket"},
		{"above BMP letters", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ticket 𠜎𠜱 𝟘𝟙"},
		{"control chars", "ticket\x00nul\x01soh\x07bell\x1besc\x7fdel\u200bzwsp\u202eRTL"},
		{"invalid UTF-8", "ticket bad \xff\xfe bytes \xc3\x28 and \xed\xa0\x80 surrogate"},
		{"rtl and combining", "שלום עולם مرحبا ticket e\u0301te\u0301"},
		{"sql and shell", `ticket'; DROP TABLE chats; -- $(rm -rf /) && echo`},
		{"16 KB of words", long16k},
		{"16 KB single word", strings.Repeat("a", event.MaxTextBytes)},
	}
}

// TestAdversarialTexts stores each text in two chats and searches with it:
// the message comes back from history unchanged (invalid UTF-8 replaced),
// relevance finds it in its chat, and nothing of the other chat leaks.
func TestAdversarialTexts(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, b.grpc)
			for _, tc := range adversarialTexts() {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					chat, other := chatID(t), chatID(t)
					putAll(t, st,
						msg(chat, "adv", event.RoleUser, 0, tc.text),
						msg(chat, "decoy", event.RoleAssistant, 1, "unrelated decoy about gardening"),
						msg(other, "other-adv", event.RoleUser, 0, tc.text),
					)
					ctx := testCtx(t, 30*time.Second)
					h, err := st.History(ctx, chat, event.RoleUser, t0.Add(time.Hour), 10)
					if err != nil {
						t.Fatal(err)
					}
					if len(h) != 1 || h[0].EventID != "adv" || h[0].Text != strings.ToValidUTF8(tc.text, "\uFFFD") {
						t.Fatalf("history = %+v, want the message with its text", h)
					}
					r, err := st.Relevant(ctx, chat, tc.text, t0.Add(time.Hour), 10)
					if err != nil {
						t.Fatal(err)
					}
					ids := eventIDs(r)
					if len(ids) == 0 || ids[0] != "adv" {
						t.Fatalf("relevant = %v, want adv first", ids)
					}
					for _, id := range ids {
						if !slices.Contains([]string{"adv", "decoy"}, id) {
							t.Fatalf("relevant = %v: %s is not chat %s's", ids, id, chat)
						}
					}
					r, err = st.Relevant(ctx, other, tc.text, t0.Add(time.Hour), 10)
					if err != nil || !slices.Equal(eventIDs(r), []string{"other-adv"}) {
						t.Fatalf("the other chat's relevant = %v, %v; want only other-adv", eventIDs(r), err)
					}
				})
			}
		})
	}
}
