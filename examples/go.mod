module github.com/routeguide/routeguide/examples

go 1.26.0

toolchain go1.26.10

require (
	github.com/routeguide/routeguide v0.0.0
	go.uber.org/goleak v1.3.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/cenkalti/backoff/v5 v5.0.3 // indirect
	github.com/google/uuid v1.6.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The examples build against the RouteGuide beside them, so that CI checks
// them against the code of the same commit. A module of your own leaves
// this out and requires a released version.
replace github.com/routeguide/routeguide => ../
