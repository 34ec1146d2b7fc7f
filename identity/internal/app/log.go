package app

import (
	"io"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/component/logging"
)

// Verbosity: logr V(0) is info; V(1) logs each refused request, V(2) each
// issued certificate and folder event. --log-level=debug shows all of them.

// NewLogger returns a logger writing to w at the configuration's level and
// format (component/logging: the same names in every component).
func NewLogger(c Config, w io.Writer) (logr.Logger, error) {
	return logging.New(w, c.LogLevel, c.LogFormat)
}
