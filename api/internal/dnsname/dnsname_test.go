package dnsname

import (
	"strings"
	"testing"
)

func TestIsLabel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"web", true},
		{"web-1", true},
		{"0abc", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"-web", false},
		{"web-", false},
		{"Web", false},
		{"we_b", false},
		{"we.b", false},
		{"wéb", false},
	} {
		if got := IsLabel(tc.in); got != tc.want {
			t.Errorf("IsLabel(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestIsSubdomain(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 63)+".", 4) // 256 characters with the dots
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"cluster.local", true},
		{"a", true},
		{"node-1.zone-a.example", true},
		{long[:253], true},
		{long[:252] + ".", false},
		{long[:255], false},
		{"", false},
		{".cluster.local", false},
		{"cluster.local.", false},
		{"cluster..local", false},
		{"Cluster.local", false},
		{"cluster.-local", false},
	} {
		if got := IsSubdomain(tc.in); got != tc.want {
			t.Errorf("IsSubdomain(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
