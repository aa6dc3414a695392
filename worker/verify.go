package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/chatprep/chatprep/internal/verify"
)

type verifyFlags struct {
	chat   string
	repair bool
}

func verifyCommand() command {
	return command{
		name: "verify", summary: "check that every stored message is found by the worker's searches; --repair what is not",
		vars: weaviateVars,
		help: `Reads every message object of the messages collection from Weaviate's object
store (its cursor, in id order: the objects as they are) and asks the searches
the worker uses whether they find each one: the chat_id and role filter of the
history searches, and the BM25 relevance search on the message's own words.
A message a search misses is asked again 2 s later (a worker may have been
writing it) and, if still missed, printed as one JSON line:
  {"chat_id":…,"event_id":…,"role":…,"id":…,"missing":["history","relevance"]}
Weaviate can lose index entries of objects it keeps (seen after a SIGKILL):
history and relevance then never show those messages.

--repair makes Weaviate write every index entry of each missing message anew
(a replace with the same properties and another vector, then with its own:
storing the same object again is a no-op in Weaviate) and asks again; each
line then says "repaired": true or false. Safe while workers run.

The last line on stdout is "checked N messages in M chats, missing K, repaired R";
progress goes to stderr at most once a second. Exit status 1 if a message is
missing and was not repaired (without --repair: if any is missing).`,
		flags: func(fs *flag.FlagSet) any {
			f := &verifyFlags{}
			fs.StringVar(&f.chat, "chat", "", "check only chat `ID` (default: every chat)")
			fs.BoolVar(&f.repair, "repair", false, "reindex each missing message so the searches find it again")
			return f
		},
		run: runVerify,
	}
}

func runVerify(ctx context.Context, env *cmdEnv) int {
	f := env.own.(*verifyFlags)
	st, code := openStore(ctx, env, storeConfig(env.cfg, nopLogger()))
	if code != exitOK {
		return code
	}
	defer st.Close()
	rep, err := verify.Run(ctx, st, verify.Options{Chat: f.chat, Repair: f.repair, Out: env.stdout, Progress: env.stderr})
	fmt.Fprintf(env.stdout, "checked %d messages in %d chats, missing %d, repaired %d\n", rep.Checked, rep.Chats, rep.Missing, rep.Repaired)
	if err != nil {
		fmt.Fprintf(env.stderr, "worker verify: stopped: %v\n", err)
		return exitFailed
	}
	if rep.Missing > rep.Repaired {
		return exitFailed
	}
	return exitOK
}
