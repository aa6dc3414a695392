// Command genhistory writes a generated chat history as JSON lines in the
// chat event format, for `worker import`: the benchmark's filler chats
// (bench/workload.Filler), 100 messages each, user and assistant in turn,
// the same lines on every run.
//
//	go run ./bench/cmd/genhistory -n 1000000 > history.jsonl
//	bin/worker import history.jsonl
//
// -from continues a history: -from 1000000 -n 1000000 writes the second
// million.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/chatprep/chatprep/bench/workload"
)

func main() {
	n := flag.Int("n", 1_000_000, "messages to write")
	from := flag.Int("from", 0, "index of the first message")
	flag.Parse()
	if *n < 0 || *from < 0 {
		fmt.Fprintln(os.Stderr, "genhistory: -n and -from must not be negative")
		os.Exit(2)
	}
	if err := workload.WriteFiller(os.Stdout, *from, *from+*n); err != nil {
		fmt.Fprintln(os.Stderr, "genhistory:", err)
		os.Exit(1)
	}
}
