// Package layering holds the test that keeps recserve's imports pointing
// down: cmd → server → serving → models → dataset, with training beside
// server (it uses serving and models, never the gRPC layer). It has no code
// of its own.
package layering
