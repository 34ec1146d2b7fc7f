// Package deploy carries the Helm charts inside Go programs, so that the
// `linkerd` CLI renders exactly the charts of its own release without
// needing a checkout or a chart repository.
package deploy

import "embed"

// Charts holds charts/ as it is in the repository: linkerd-crds,
// linkerd-control-plane (with its subcharts) and the partials library
// chart. The all: prefix keeps files Helm needs whose names start with _
// or . (template helpers such as _helpers.tpl, .helmignore).
//
//go:embed all:charts
var Charts embed.FS
