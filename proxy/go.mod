module github.com/linkerd-go/linkerd-go/proxy

go 1.26.0

replace github.com/linkerd-go/linkerd-go/api => ../api

require golang.org/x/sys v0.50.0 // indirect
