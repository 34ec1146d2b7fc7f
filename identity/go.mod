module github.com/linkerd-go/linkerd-go/identity

go 1.26.0

replace github.com/linkerd-go/linkerd-go/api => ../api
