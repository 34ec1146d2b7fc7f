// Package destination is the mesh's discovery service: endpoints, service
// profiles and (later) inbound policy for the proxies.
package destination
