module github.com/duplexio/duplex

go 1.24
