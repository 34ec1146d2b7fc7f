package app

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
)

// Verbosity: logr V(0) is info; V(1) logs each refused request, V(2) each
// issued certificate and folder event. --log-level=debug shows all of them.

func parseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("--log-level %q is not debug, info, warn or error", level)
	}
}

// NewLogger returns a logger writing to w at the configuration's level and
// format.
func NewLogger(c Config, w io.Writer) (logr.Logger, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return logr.Logger{}, err
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.LogFormat {
	case "plain":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return logr.Logger{}, fmt.Errorf("--log-format %q is not plain or json", c.LogFormat)
	}
	return logr.FromSlogHandler(h), nil
}
