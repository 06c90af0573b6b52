//go:build !unix

package creds

// cpuTime is not measured here: the benchmark's cpu-ns/op reads 0.
func cpuTime() int64 { return 0 }
