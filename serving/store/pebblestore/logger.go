package pebblestore

import (
	"context"
	"fmt"
	"log/slog"
)

// logger routes Pebble's messages to a slog.Logger, so an embedded store
// logs like the rest of the server instead of writing to stderr.
type logger struct{ l *slog.Logger }

func newLogger(l *slog.Logger) logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return logger{l.With("component", "pebble")}
}

func (g logger) Infof(format string, args ...any) { g.log(slog.LevelInfo, format, args) }

func (g logger) Errorf(format string, args ...any) { g.log(slog.LevelError, format, args) }

func (g logger) log(level slog.Level, format string, args []any) {
	if ctx := context.Background(); g.l.Enabled(ctx, level) {
		g.l.Log(ctx, level, fmt.Sprintf(format, args...))
	}
}

// Fatalf is Pebble reporting a broken invariant, after which it must not
// continue; Pebble's own logger exits the process, this one logs and
// panics so the owner of the goroutine decides.
func (g logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.l.Log(context.Background(), slog.LevelError, msg, "fatal", true)
	panic("pebble: " + msg)
}
