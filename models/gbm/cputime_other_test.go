//go:build !unix

package gbm_test

// processCPU is not implemented off Unix.
func processCPU() int64 { return -1 }
