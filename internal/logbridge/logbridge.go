// Package logbridge puts the libraries' own logging through the worker's
// zerolog logger, so that every line the worker writes is one JSON object
// with each key once (CONTRACT.md, Logs):
//
//   - the AWS SDK logs through smithy-go's logging.Logger, set on the
//     aws.Config (AWS): its IMDS warnings when it looks for credentials,
//     "failed to discard remaining HTTP response body", and, with
//     aws.ClientLogMode, retries;
//   - grpc logs through the process-global grpclog (GRPC);
//   - the Weaviate client and net/http's servers write to a standard
//     library log.Logger, the package's global one unless given another
//     (Writer);
//   - OpenTelemetry's SDK reports through its process-global error handler
//     and logr logger (SetOTel).
//
// Each line becomes one event of the given logger, which carries the
// component field, at a level mapped from the library's own. Bursts are
// rate-limited: a library that logs once per failed connection attempt would
// otherwise flood the stream during an outage that the worker already
// reports once.
//
// Only grpclog, the standard log package and OpenTelemetry leave no choice
// but a global hook; SetGlobal sets them, and only the process's main
// command calls it.
package logbridge

import (
	"fmt"
	"io"
	stdlog "log"
	"os"
	"strings"
	"time"

	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/grpclog"
)

// Burst and BurstPeriod rate-limit each bridge: at most Burst lines per
// BurstPeriod pass; the rest of the period's lines are dropped.
const (
	Burst       = 10
	BurstPeriod = 10 * time.Second
)

func limited(log zerolog.Logger) zerolog.Logger {
	return log.Sample(&zerolog.BurstSampler{Burst: Burst, Period: BurstPeriod})
}

// AWS returns a logger for aws.Config.Logger: the SDK's WARN lines at warn,
// its DEBUG lines (retries and wire logs, only with aws.ClientLogMode) at
// debug.
func AWS(log zerolog.Logger) logging.Logger {
	log = limited(log)
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		lvl := zerolog.DebugLevel
		if c == logging.Warn {
			lvl = zerolog.WarnLevel
		}
		log.WithLevel(lvl).Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
	})
}

// Writer returns an io.Writer for a standard library log.Logger (created
// with no prefix and no flags): each line written is one event at lvl.
func Writer(log zerolog.Logger, lvl zerolog.Level) io.Writer {
	return lineWriter{log: limited(log), lvl: lvl}
}

type lineWriter struct {
	log zerolog.Logger
	lvl zerolog.Level
}

func (w lineWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.log.WithLevel(w.lvl).Msg(line)
		}
	}
	return len(p), nil
}

// GRPC returns a grpclog.LoggerV2: grpc's INFO and WARNING lines at debug
// (grpc's own default logger shows neither; it warns on every reconnection
// attempt, and the worker reports a Weaviate outage itself), ERROR at error,
// FATAL at fatal, after which it exits with status 1 as grpc expects.
// Verbose lines (V(l) with l > 0) pass only at trace.
func GRPC(log zerolog.Logger) grpclog.LoggerV2 { return grpcLogger{log: limited(log), fatal: log} }

type grpcLogger struct {
	log   zerolog.Logger // rate-limited
	fatal zerolog.Logger // not: the last line before the exit is never dropped
}

var _ grpclog.LoggerV2 = grpcLogger{}

func (g grpcLogger) at(lvl zerolog.Level, msg string) {
	if lvl != zerolog.FatalLevel {
		g.log.WithLevel(lvl).Msg(strings.TrimSpace(msg))
		return
	}
	g.fatal.WithLevel(lvl).Msg(strings.TrimSpace(msg))
	os.Exit(1)
}

// grpc's severities, as this logger writes them.
const (
	grpcInfo    = zerolog.DebugLevel
	grpcWarning = zerolog.DebugLevel
	grpcError   = zerolog.ErrorLevel
	grpcFatal   = zerolog.FatalLevel
)

func (g grpcLogger) Info(args ...any)               { g.at(grpcInfo, fmt.Sprint(args...)) }
func (g grpcLogger) Infoln(args ...any)             { g.at(grpcInfo, fmt.Sprintln(args...)) }
func (g grpcLogger) Infof(f string, args ...any)    { g.at(grpcInfo, fmt.Sprintf(f, args...)) }
func (g grpcLogger) Warning(args ...any)            { g.at(grpcWarning, fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any)          { g.at(grpcWarning, fmt.Sprintln(args...)) }
func (g grpcLogger) Warningf(f string, args ...any) { g.at(grpcWarning, fmt.Sprintf(f, args...)) }
func (g grpcLogger) Error(args ...any)              { g.at(grpcError, fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any)            { g.at(grpcError, fmt.Sprintln(args...)) }
func (g grpcLogger) Errorf(f string, args ...any)   { g.at(grpcError, fmt.Sprintf(f, args...)) }
func (g grpcLogger) Fatal(args ...any)              { g.at(grpcFatal, fmt.Sprint(args...)) }
func (g grpcLogger) Fatalln(args ...any)            { g.at(grpcFatal, fmt.Sprintln(args...)) }
func (g grpcLogger) Fatalf(f string, args ...any)   { g.at(grpcFatal, fmt.Sprintf(f, args...)) }

// V reports whether grpc's verbosity level l is logged: 0 always (the
// logger's level filters further), above 0 only at trace.
func (g grpcLogger) V(l int) bool { return l <= 0 || g.log.GetLevel() <= zerolog.TraceLevel }

// SetGlobal points the process-global log hooks at log: grpclog (component
// grpc), the standard library's log package (component stdlog, at warn:
// the Weaviate client writes its warnings there) and OpenTelemetry's
// (component otel, see SetOTel). These libraries offer no other hook. Call it once, first thing in the process, before any gRPC
// connection or Weaviate client exists: grpclog.SetLoggerV2 must not run
// concurrently with gRPC. That is why `worker run` calls it and app.Run,
// which tests run many times at once in one process, does not.
func SetGlobal(log zerolog.Logger) {
	grpclog.SetLoggerV2(GRPC(log.With().Str("component", "grpc").Logger()))
	stdlog.SetFlags(0)
	stdlog.SetPrefix("")
	stdlog.SetOutput(Writer(log.With().Str("component", "stdlog").Logger(), zerolog.WarnLevel))
	SetOTel(log.With().Str("component", "otel").Logger())
}
