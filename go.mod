module github.com/duplexio/duplex

go 1.24

require (
	github.com/klauspost/compress v1.18.2
	go.uber.org/goleak v1.3.0
)
