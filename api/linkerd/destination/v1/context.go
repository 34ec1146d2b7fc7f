package destinationv1

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/linkerd-go/linkerd-go/api/internal/dnsname"
)

// MaxContextTokenLength bounds the context tokens ParseContextToken accepts.
// Today's tokens are under 600 bytes (three names of at most 253 characters
// and the JSON around them); the rest is room for fields added later.
const MaxContextTokenLength = 4096

// ContextToken tells the destination service who is asking: the namespace,
// node and pod of the caller's workload. The injector writes it into the
// proxy's environment, and the proxy sends it, as it is, in
// GetRequest.context_token and GetProfileRequest.context_token.
//
// Its encoding is a JSON object, {"ns":"…","nodeName":"…","pod":"…"}. Every
// field is optional. Keys are matched exactly (case-sensitive) and may appear
// once; unknown keys are ignored, so that newer injectors can add to it
// without breaking older servers.
type ContextToken struct {
	// Namespace is the caller's namespace (an RFC 1123 label).
	Namespace string `json:"ns,omitempty"`
	// NodeName is the node the caller runs on (an RFC 1123 subdomain).
	NodeName string `json:"nodeName,omitempty"`
	// Pod is the caller's pod name (an RFC 1123 subdomain).
	Pod string `json:"pod,omitempty"`
}

// ErrMalformedContextToken is wrapped by every error ParseContextToken returns.
var ErrMalformedContextToken = errors.New("malformed context token")

// Validate reports whether every set field is well formed.
func (t ContextToken) Validate() error {
	if t.Namespace != "" && !dnsname.IsLabel(t.Namespace) {
		return fmt.Errorf("%w: namespace %q is not an RFC 1123 label", ErrMalformedContextToken, t.Namespace)
	}
	if t.NodeName != "" && !dnsname.IsSubdomain(t.NodeName) {
		return fmt.Errorf("%w: node name %q is not an RFC 1123 subdomain", ErrMalformedContextToken, t.NodeName)
	}
	if t.Pod != "" && !dnsname.IsSubdomain(t.Pod) {
		return fmt.Errorf("%w: pod name %q is not an RFC 1123 subdomain", ErrMalformedContextToken, t.Pod)
	}
	return nil
}

// Encode returns the token's wire form. It does not validate.
func (t ContextToken) Encode() string {
	// Marshalling a struct of strings cannot fail.
	b, _ := json.Marshal(t)
	return string(b)
}

// ParseContextToken decodes a context token. The empty string is the empty
// token: callers that were given no context are served without one.
func ParseContextToken(s string) (ContextToken, error) {
	if s == "" {
		return ContextToken{}, nil
	}
	if len(s) > MaxContextTokenLength {
		return ContextToken{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedContextToken, len(s), MaxContextTokenLength)
	}
	t, err := decodeContextToken(json.NewDecoder(strings.NewReader(s)))
	if err != nil {
		return ContextToken{}, fmt.Errorf("%w: %v", ErrMalformedContextToken, err)
	}
	if err := t.Validate(); err != nil {
		return ContextToken{}, err
	}
	return t, nil
}

// decodeContextToken reads one JSON object and nothing after it, walking its
// tokens so that keys match exactly and cannot repeat (encoding/json would
// match keys in any case and let the last repeat win).
func decodeContextToken(dec *json.Decoder) (ContextToken, error) {
	if tok, err := dec.Token(); err != nil {
		return ContextToken{}, err
	} else if tok != json.Delim('{') {
		return ContextToken{}, errors.New("not a JSON object")
	}
	var t ContextToken
	fields := map[string]*string{"ns": &t.Namespace, "nodeName": &t.NodeName, "pod": &t.Pod}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ContextToken{}, err
		}
		key, _ := tok.(string) // object keys are always strings
		field, known := fields[key]
		if !known {
			// A key a newer injector added: skip its value, whatever it is.
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return ContextToken{}, err
			}
			continue
		}
		if seen[key] {
			return ContextToken{}, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		// A string and only a string: encoding/json would take null too.
		value, err := dec.Token()
		if err != nil {
			return ContextToken{}, err
		}
		str, isString := value.(string)
		if !isString {
			return ContextToken{}, fmt.Errorf("key %q: value is not a string", key)
		}
		*field = str
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return ContextToken{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ContextToken{}, errors.New("data after the JSON object")
	}
	return t, nil
}
