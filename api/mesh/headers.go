package mesh

import "strings"

// HTTP headers the proxies read and write. Header names are case-insensitive
// on the wire; these are the canonical lower-case forms HTTP/2 requires.
const (
	// ClientIDHeader carries, on requests the inbound proxy hands to the
	// application, the mesh TLS identity of the client's proxy. The inbound
	// proxy removes any such header that did not come from it, so the
	// application can trust it.
	ClientIDHeader = "l5d-client-id"

	// OrigProtoHeader marks an HTTP/1.x request that a proxy carries to another
	// proxy over HTTP/2. Its value is the original protocol version
	// ("HTTP/1.1" or "HTTP/1.0"); the receiving proxy restores it and removes
	// the header.
	OrigProtoHeader = "l5d-orig-proto"

	// ProxyErrorHeader is set on responses the proxy makes up itself (503 with
	// no endpoints, 504 on timeout, 403 when policy denies) with a short reason,
	// so that people can tell them from the application's responses.
	ProxyErrorHeader = "l5d-proxy-error"

	// DstOverrideHeader, on a request from an ingress, names the authority
	// ("web.emojivoto.svc.cluster.local:80") to route the request to instead of
	// its Host.
	DstOverrideHeader = "l5d-dst-override"

	// NotSentHeader is set by the inbound proxy, on the answer to a request
	// from another proxy, when the request reached no application: the
	// connection to it failed (its container has exited while the pod
	// terminates, say). The client's proxy may then send the request to
	// another endpoint, and removes the header either way. The inbound
	// proxy removes it from the application's own responses, so only a
	// proxy can set it.
	NotSentHeader = "l5d-proxy-not-sent"
)

// HeaderPrefix starts the name of every header the mesh owns.
const HeaderPrefix = "l5d-"

// IsMeshHeader reports whether name (in any case) is a header the mesh owns.
func IsMeshHeader(name string) bool {
	return len(name) >= len(HeaderPrefix) && strings.EqualFold(name[:len(HeaderPrefix)], HeaderPrefix)
}

// Values of OrigProtoHeader.
const (
	OrigProtoHTTP11 = "HTTP/1.1"
	OrigProtoHTTP10 = "HTTP/1.0"
)

// ParseOrigProto returns the HTTP/1 minor version an OrigProtoHeader value
// names, and false for any other value.
func ParseOrigProto(v string) (minor int, ok bool) {
	switch v {
	case OrigProtoHTTP11:
		return 1, true
	case OrigProtoHTTP10:
		return 0, true
	}
	return 0, false
}
