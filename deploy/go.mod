module github.com/linkerd-go/linkerd-go/deploy

go 1.26.0
