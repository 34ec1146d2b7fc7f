package logging

import (
	"bytes"
	"strings"
	"testing"
)

// Each level shows what it names and hides what is below it.
func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		level string
		shown []string // of error, warn-less info V(0), V(1), V(6)
	}{
		{"off", nil},
		{"error", []string{"failed"}},
		{"info", []string{"failed", "v0"}},
		{"DEBUG", []string{"failed", "v0", "v1"}},
		{"trace", []string{"failed", "v0", "v1", "v6"}},
	} {
		var b bytes.Buffer
		log, err := New(&b, tc.level, "plain")
		if err != nil {
			t.Fatal(err)
		}
		log.Error(nil, "failed")
		log.Info("v0")
		log.V(1).Info("v1")
		log.V(6).Info("v6")
		for _, msg := range []string{"failed", "v0", "v1", "v6"} {
			want := strings.Contains(strings.Join(tc.shown, " "), msg)
			if got := strings.Contains(b.String(), "msg="+msg); got != want {
				t.Errorf("level %s: %s shown %v, want %v", tc.level, msg, got, want)
			}
		}
	}
}

func TestBadValues(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "verbose", "plain"); err == nil {
		t.Error("level verbose accepted")
	}
	if _, err := New(&bytes.Buffer{}, "info", "yaml"); err == nil {
		t.Error("format yaml accepted")
	}
	var b bytes.Buffer
	log, err := New(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello")
	if !strings.HasPrefix(b.String(), "{") {
		t.Errorf("json format wrote %q", b.String())
	}
}
