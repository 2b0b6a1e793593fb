package main

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/lmittmann/tint"
)

// newLogger builds the process logger. Format "auto" picks colored text when
// w is a terminal and JSON otherwise, for log collectors. Format "text" is
// tint, without color unless w is a terminal, and "json" is slog's JSON
// handler.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	terminal := isTerminal(w)
	if format == "json" || (format == "auto" && !terminal) {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewTextHandler(w, &tint.Options{
		Level:      level,
		TimeFormat: time.TimeOnly,
		NoColor:    !terminal,
	}))
}

func isTerminal(w io.Writer) bool {
	file, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// buildVersion returns the version stamped at build time, else the module
// version recorded by the Go toolchain, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "devel"
}
