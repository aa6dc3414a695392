package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/chatprep/chatprep/internal/forget"
)

type forgetFlags struct {
	chat      string
	olderThan string
	dryRun    bool
}

func forgetCommand() command {
	return command{
		name: "forget", summary: "erase a chat (--chat ID), or the messages older than an age (--older-than D), from Weaviate",
		vars: weaviateVars,
		help: `With --chat ID: erases the chat, every stored message of it and its muted
state (its mutes and unmutes): a "delete my data" request. Prints what it
removed and what is left, counted in Weaviate after the delete:
  removed 120 messages and 3 state objects of chat wa:+4915112345678; 0 left

With --older-than D (retention, e.g. 2160h or 90d): removes the messages
sent more than D ago, of every chat, or of chat ID with --chat as well. The
muted state is kept (the newest mute or unmute decides it, whatever its
age). Schedule it (deploy/ecs/retention-schedule.json runs it daily).

--dry-run counts what would go and removes nothing. Progress goes to stderr
at most once a second. Exit status 1 if anything of the selection is left
after the delete or the delete failed; run it again.

Safe while workers run: each delete removes what is stored at that moment.
An event of the chat still in the input queue is stored again when a worker
processes it (its count after the delete then fails the run): to erase a
chat for good, stop its events at the producer first, or run forget again
once they are processed. Weaviate's filters find what its index holds; after
a Weaviate crash, worker verify --chat ID (which reads the object store)
shows any message of the chat that is left.`,
		flags: func(fs *flag.FlagSet) any {
			f := &forgetFlags{}
			fs.StringVar(&f.chat, "chat", "", "the chat `ID` to erase (with --older-than: whose old messages go)")
			fs.StringVar(&f.olderThan, "older-than", "", "retention: remove the messages sent more than `D` ago (a duration such as 2160h, or days such as 90d)")
			fs.BoolVar(&f.dryRun, "dry-run", false, "count what would be removed; remove nothing")
			return f
		},
		run: runForget,
	}
}

func runForget(ctx context.Context, env *cmdEnv) int {
	f := env.own.(*forgetFlags)
	o := forget.Options{Chat: f.chat, DryRun: f.dryRun, Progress: env.stderr}
	if f.olderThan != "" {
		age, err := forget.ParseAge(f.olderThan)
		if err != nil {
			fmt.Fprintf(env.stderr, "worker forget: --older-than %q: %v\n", f.olderThan, err)
			return exitUsage
		}
		o.Before = time.Now().Add(-age).UTC().Truncate(time.Second)
	}
	if o.Chat == "" && o.Before.IsZero() {
		fmt.Fprintln(env.stderr, "worker forget: name a chat (--chat ID), an age (--older-than D), or both (see worker forget --help)")
		return exitUsage
	}
	st, code := openStore(ctx, env, storeConfig(env.cfg, nopLogger()))
	if code != exitOK {
		return code
	}
	defer st.Close()
	rep, err := forget.Run(ctx, st, o)
	what := forgotten(o, f.olderThan)
	if err != nil {
		fmt.Fprintf(env.stdout, "removed %s; stopped\n", counts(o, rep.DeletedMessages, rep.DeletedState))
		fmt.Fprintf(env.stderr, "worker forget: %s: stopped: %v; run it again\n", what, err)
		return exitFailed
	}
	if o.DryRun {
		fmt.Fprintf(env.stdout, "would remove %s %s (dry run: nothing removed)\n", counts(o, rep.Messages, rep.State), what)
		return exitOK
	}
	fmt.Fprintf(env.stdout, "removed %s %s; %d left\n", counts(o, rep.DeletedMessages, rep.DeletedState), what, rep.Left())
	if rep.Left() > 0 {
		fmt.Fprintf(env.stderr, "worker forget: %s still in Weaviate after the delete: stored while it ran "+
			"(a worker processing the chat's events still in the queue), or Weaviate failed to delete them; run it again\n",
			counts(o, rep.LeftMessages, rep.LeftState))
		return exitFailed
	}
	return exitOK
}

// forgotten names what the options take.
func forgotten(o forget.Options, age string) string {
	var b strings.Builder
	if o.Chat != "" {
		b.WriteString("of chat " + o.Chat)
	} else {
		b.WriteString("of every chat")
	}
	if !o.Before.IsZero() {
		fmt.Fprintf(&b, " sent before %s (older than %s)", o.Before.Format(time.RFC3339), age)
	}
	return b.String()
}

// counts says how many messages (and state objects, for a whole chat).
func counts(o forget.Options, messages, state int64) string {
	s := fmt.Sprintf("%d messages", messages)
	if o.WholeChat() {
		s += fmt.Sprintf(" and %d state objects", state)
	}
	return s
}
