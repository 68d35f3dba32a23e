//go:build !linux

package server_test

import "time"

// threadCPU is not measured here; the benchmark then reports 0.
func threadCPU() time.Duration { return 0 }

// processCPU is not measured here either.
func processCPU() time.Duration { return 0 }
