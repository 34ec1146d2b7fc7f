// Package discovery is the proxy's client of the destination service
// (linkerd.destination.v1.DestinationService): it turns the Get and GetProfile
// streams into snapshots that the data path reads on every request.
//
// # Watches
//
// Client.Endpoints and Client.Profile return a watch on a target (a "host:port"
// authority). All watches of one target share one gRPC stream; the stream lives
// while at least one watch holds it and for Options.IdleTimeout after the last
// one is released, so that a target used again soon keeps its state. At most
// Options.MaxTargets targets of each kind are cached: when the cache is full the
// longest-idle target is evicted, and when every target is in use the new watch
// is refused (see ErrTooManyTargets).
//
// A watch is read with Snapshot, which is a single atomic load, and waited on
// with Changed:
//
//	for {
//		changed := w.Changed() // first: a change after this closes it
//		s := w.Snapshot()
//		use(s)
//		select {
//		case <-changed:
//		case <-ctx.Done():
//			return
//		}
//	}
//
// Snapshots, their slices and their maps are shared and immutable: callers must
// not modify them.
//
// # Failures
//
// A stream that fails is reopened after an exponential backoff with jitter,
// bounded by Options.BackoffMax. Meanwhile the last known state is kept and
// marked Stale. A new stream starts from an empty set on the server side; the
// client rebuilds the set from the new stream's first messages and keeps the
// endpoints it held before that the new stream has not confirmed yet until the
// initial burst is over (the first remove, no_endpoints or does_not_exist, or
// Options.ResyncSettle without another add), so that requests never see an
// empty or shrunken set because of a reconnect.
//
// A target the control plane does not know (does_not_exist, or a stream refused
// with INVALID_ARGUMENT) is reported as DoesNotExist: the data path then sends
// the traffic to the original destination address. Invalid parts of messages
// (malformed addresses, TLS identities of unknown kinds, regular expressions
// that do not compile, out-of-range statuses) are dropped and logged; the rest
// of the message applies.
//
// # Logging
//
// Keys: "target", "kind" ("endpoints" or "profile"), "err". Verbosity 0:
// invalid input and refused targets; 1: stream starts, ends and evictions.
//
// # Metrics
//
//	discovery_streams_open{kind}               gauge: Get/GetProfile streams open now
//	discovery_updates_total{kind}              counter: messages received
//	discovery_invalid_updates_total{kind}      counter: messages or parts of messages dropped as invalid
//	discovery_reconnects_total{kind}           counter: streams reopened after a failure
//	discovery_evictions_total{kind}            counter: targets evicted from the cache
//	discovery_targets{kind}                    gauge: targets cached now
//	discovery_target_refusals_total{kind,reason} counter: watches refused ("too_many_targets", "invalid_target", "closed")
package discovery
