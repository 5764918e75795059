module github.com/oauth-lock/oauth-lock/bench/go

go 1.26.0

require github.com/oauth-lock/oauth-lock/bindings/go v0.0.0

require golang.org/x/oauth2 v0.38.0 // indirect

replace github.com/oauth-lock/oauth-lock/bindings/go => ../../bindings/go
