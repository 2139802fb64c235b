module github.com/enetkit/enetkit

go 1.26.0

require (
	github.com/codecat/go-enet v0.0.0-20250227075345-1c03ac96b7b4
	go.uber.org/zap v1.28.0
	golang.org/x/sync v0.24.0
)

require (
	go.uber.org/goleak v1.3.0 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
