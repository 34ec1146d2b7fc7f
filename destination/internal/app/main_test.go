//go:build !integration

package app

import (
	"testing"

	"go.uber.org/goleak"
)

// The integration tests have their own TestMain (one API server for the
// package); goroutine leaks are checked in the unit run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
