// Package logging builds every component's logger the same way: logr over
// log/slog, on stderr, with Linkerd's level and format names. One mapping,
// so that --log-level=debug shows the same depth of detail in identity,
// destination, the injector and the proxy.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
)

// logr's V(n) lines are slog level -n. Components log at V(0) what an
// operator watches, V(1) each refused or failed request, V(2) and deeper
// each routine event.
const (
	// levelDebug shows V(1) to V(4): every line a component writes for
	// debugging.
	levelDebug = slog.LevelDebug
	// levelTrace shows every V level.
	levelTrace = slog.LevelDebug - 124
	// levelOff hides everything.
	levelOff = slog.LevelError + 100
)

// Levels are the names ParseLevel takes, least verbose first.
const Levels = "off, error, warn, info, debug, trace"

// ParseLevel returns the lowest slog level a --log-level shows: off,
// error, warn (or warning), info, debug, trace, in any case.
func ParseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "off":
		return levelOff, nil
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return levelDebug, nil
	case "trace":
		return levelTrace, nil
	default:
		return 0, fmt.Errorf("log level %q is not one of %s", level, Levels)
	}
}

// CheckFormat reports a --log-format other than plain or json.
func CheckFormat(format string) error {
	if format != "plain" && format != "json" {
		return fmt.Errorf("log format %q is not plain or json", format)
	}
	return nil
}

// New returns a logger writing to w at level, as text (plain) or JSON.
func New(w io.Writer, level, format string) (logr.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return logr.Logger{}, err
	}
	if err := CheckFormat(format); err != nil {
		return logr.Logger{}, err
	}
	if l == levelOff {
		// logr writes errors whatever the handler's level.
		return logr.Discard(), nil
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return logr.FromSlogHandler(slog.NewJSONHandler(w, opts)), nil
	}
	return logr.FromSlogHandler(slog.NewTextHandler(w, opts)), nil
}
