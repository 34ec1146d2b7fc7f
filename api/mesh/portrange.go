package mesh

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of TCP ports. A single port is a range with
// First == Last.
type PortRange struct {
	First, Last uint16
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port uint16) bool { return r.First <= port && port <= r.Last }

// String returns "8080" for a single port and "8000-8100" for a range.
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// ErrMalformedPortList is wrapped by every error ParsePortRanges returns.
var ErrMalformedPortList = errors.New("malformed port list")

// MaxPortListLength bounds the port lists ParsePortRanges accepts. Annotations
// are limited in size too; this keeps a hostile value from costing much.
const MaxPortListLength = 16 << 10

// ParsePortRanges parses the port-list syntax of annotations such as
// config.linkerd.io/opaque-ports and of proxy-init's flags: comma-separated
// ports (1-65535) or inclusive ranges "a-b" with a <= b, blanks around items
// allowed. The empty string (or only blanks) is the empty list. Every other
// form, including empty items ("80,,443"), is an error that names the item.
// The ranges are returned in the order written, duplicates kept.
func ParsePortRanges(s string) ([]PortRange, error) {
	if len(s) > MaxPortListLength {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedPortList, len(s), MaxPortListLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []PortRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		r, err := parsePortRange(item)
		if err != nil {
			return nil, fmt.Errorf("%w: item %q: %v", ErrMalformedPortList, item, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parsePortRange(item string) (PortRange, error) {
	if item == "" {
		return PortRange{}, errors.New("empty item")
	}
	first, last, isRange := strings.Cut(item, "-")
	lo, err := parsePort(first)
	if err != nil {
		return PortRange{}, err
	}
	if !isRange {
		return PortRange{lo, lo}, nil
	}
	hi, err := parsePort(last)
	if err != nil {
		return PortRange{}, err
	}
	if lo > hi {
		return PortRange{}, fmt.Errorf("range is reversed (%d > %d)", lo, hi)
	}
	return PortRange{lo, hi}, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	// Digits only: strconv would also take "+80".
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is out of range 1-65535", n)
	}
	return uint16(n), nil
}

// FormatPortRanges returns the port-list form of rs, which ParsePortRanges
// reads back as rs.
func FormatPortRanges(rs []PortRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// NormalizePortRanges returns rs sorted, with overlapping and adjacent ranges
// merged, so that rule sets and comparisons do not depend on how a list was
// written. Reversed ranges (First > Last) contain no port and are dropped.
func NormalizePortRanges(rs []PortRange) []PortRange {
	sorted := slices.DeleteFunc(slices.Clone(rs), func(r PortRange) bool { return r.First > r.Last })
	slices.SortFunc(sorted, func(a, b PortRange) int { return int(a.First) - int(b.First) })
	var out []PortRange
	for _, r := range sorted {
		if n := len(out); n > 0 && int(r.First) <= int(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// PortsContain reports whether any range in rs contains port.
func PortsContain(rs []PortRange, port uint16) bool {
	return slices.ContainsFunc(rs, func(r PortRange) bool { return r.Contains(port) })
}
