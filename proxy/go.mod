module github.com/linkerd-go/linkerd-go/proxy

go 1.26.0

replace github.com/linkerd-go/linkerd-go/api => ../api

require (
	github.com/go-logr/logr v1.4.4
	github.com/linkerd-go/linkerd-go/api v0.0.0
	github.com/prometheus/client_golang v1.25.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.24.0
	golang.org/x/sys v0.50.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/kylelemons/godebug v1.1.0 // indirect
	github.com/linkerd-go/linkerd-go/component v0.0.0
	github.com/linkerd-go/linkerd-go/tools/testkit v0.0.0
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.3
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
)

replace github.com/linkerd-go/linkerd-go/tools/testkit => ../tools/testkit

replace github.com/linkerd-go/linkerd-go/component => ../component
