// Package dnsname checks the DNS-style names Kubernetes and the mesh use:
// RFC 1123 labels (namespaces, ServiceAccounts in identity names) and
// subdomains (trust domains, node and pod names).
package dnsname

const (
	// MaxLabelLength is the longest RFC 1123 label.
	MaxLabelLength = 63
	// MaxSubdomainLength is the longest RFC 1123 subdomain.
	MaxSubdomainLength = 253
)

// IsLabel reports whether s is an RFC 1123 label: 1 to 63 lower-case letters,
// digits and '-', starting and ending with a letter or digit.
func IsLabel(s string) bool {
	if len(s) == 0 || len(s) > MaxLabelLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i != 0 && i != len(s)-1:
		default:
			return false
		}
	}
	return true
}

// IsSubdomain reports whether s is an RFC 1123 subdomain: labels separated by
// single dots, at most 253 characters, no leading or trailing dot.
func IsSubdomain(s string) bool {
	if len(s) == 0 || len(s) > MaxSubdomainLength {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if !IsLabel(s[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}
