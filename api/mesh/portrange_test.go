package mesh

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParsePortRanges(t *testing.T) {
	for in, want := range map[string][]PortRange{
		"":                  nil,
		"  ":                nil,
		"80":                {{80, 80}},
		"1,65535":           {{1, 1}, {65535, 65535}},
		"8000-8100":         {{8000, 8100}},
		"25, 587 ,3306":     {{25, 25}, {587, 587}, {3306, 3306}},
		"4190-4191,4190":    {{4190, 4191}, {4190, 4190}},
		"80 - 90":           {{80, 90}},
		"0080":              {{80, 80}},
		"443-443":           {{443, 443}},
		DefaultOpaquePorts:  {{25, 25}, {587, 587}, {3306, 3306}, {4444, 4444}, {5432, 5432}, {6379, 6379}, {9300, 9300}, {11211, 11211}},
		"1-65535,9000-9999": {{1, 65535}, {9000, 9999}},
	} {
		got, err := ParsePortRanges(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParsePortRanges(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestParsePortRangesRejects(t *testing.T) {
	for in, wantInMessage := range map[string]string{
		"0":            "out of range",
		"65536":        "out of range",
		"70000":        "out of range",
		"99999":        "out of range",
		"123456":       "not a port number",
		"-1":           "not a port number",
		"+80":          "not a port number",
		"80,,443":      "empty item",
		"80,":          "empty item",
		",80":          "empty item",
		"9000-8000":    "reversed",
		"80-":          "not a port number",
		"-80":          "not a port number",
		"1-2-3":        "not a port number",
		"http":         "not a port number",
		"80 443":       "not a port number",
		"0x50":         "not a port number",
		"８０":           "not a port number",
		"80-0x90":      "not a port number",
		"1-65536":      "out of range",
		"0-10":         "out of range",
		"4190\x00,443": "not a port number",
	} {
		got, err := ParsePortRanges(in)
		if err == nil {
			t.Errorf("ParsePortRanges(%q) = %v, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrMalformedPortList) || !strings.Contains(err.Error(), wantInMessage) {
			t.Errorf("ParsePortRanges(%q) error %q, want ErrMalformedPortList saying %q", in, err, wantInMessage)
		}
	}
	if _, err := ParsePortRanges(strings.Repeat("80,", MaxPortListLength)); !errors.Is(err, ErrMalformedPortList) {
		t.Errorf("an oversized list was not refused: %v", err)
	}
}

func TestFormatPortRangesRoundTrip(t *testing.T) {
	rs := []PortRange{{25, 25}, {8000, 8100}, {1, 65535}}
	s := FormatPortRanges(rs)
	if s != "25,8000-8100,1-65535" {
		t.Fatalf("FormatPortRanges = %q", s)
	}
	got, err := ParsePortRanges(s)
	if err != nil || !slices.Equal(got, rs) {
		t.Fatalf("ParsePortRanges(%q) = %v, %v", s, got, err)
	}
	if FormatPortRanges(nil) != "" {
		t.Fatalf("FormatPortRanges(nil) = %q", FormatPortRanges(nil))
	}
}

func TestNormalizePortRanges(t *testing.T) {
	in := []PortRange{{9000, 9100}, {80, 80}, {81, 90}, {4190, 4191}, {4191, 4191}, {9050, 9200}, {100, 100}}
	want := []PortRange{{80, 90}, {100, 100}, {4190, 4191}, {9000, 9200}}
	if got := NormalizePortRanges(in); !slices.Equal(got, want) {
		t.Errorf("NormalizePortRanges = %v, want %v", got, want)
	}
	if got := NormalizePortRanges([]PortRange{{65535, 65535}, {1, 65535}}); !slices.Equal(got, []PortRange{{1, 65535}}) {
		t.Errorf("NormalizePortRanges of the full range = %v", got)
	}
	if got := NormalizePortRanges([]PortRange{{10, 5}, {7, 7}}); !slices.Equal(got, []PortRange{{7, 7}}) {
		t.Errorf("NormalizePortRanges kept a reversed range: %v", got)
	}
	if in[0] != (PortRange{9000, 9100}) {
		t.Errorf("NormalizePortRanges modified its input")
	}
}

func TestPortsContain(t *testing.T) {
	rs := DefaultInboundPortsToIgnore()
	for port, want := range map[uint16]bool{4190: true, 4191: true, 4189: false, 4192: false, 4143: false} {
		if got := PortsContain(rs, port); got != want {
			t.Errorf("PortsContain(%v, %d) = %v", rs, port, got)
		}
	}
}

// FuzzParsePortRanges checks that parsing never panics, that every accepted
// range is valid, and that formatting and parsing again gives the same ranges.
func FuzzParsePortRanges(f *testing.F) {
	for _, s := range []string{"", "80", "8000-8100", DefaultOpaquePorts, "80,,443", "9000-8000", " 1 - 2 ,3", "65535-65535", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParsePortRanges(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.First == 0 || r.First > r.Last {
				t.Fatalf("ParsePortRanges(%q) accepted %v", s, r)
			}
		}
		again, err := ParsePortRanges(FormatPortRanges(rs))
		if err != nil || !slices.Equal(again, rs) {
			t.Fatalf("round trip of %v gave %v, %v", rs, again, err)
		}
		norm := NormalizePortRanges(rs)
		for p := 1; p <= 65535; p += 257 {
			if PortsContain(rs, uint16(p)) != PortsContain(norm, uint16(p)) {
				t.Fatalf("normalizing %v to %v changed whether it contains %d", rs, norm, p)
			}
		}
	})
}
