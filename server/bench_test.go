package server_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

// BenchmarkServing measures end-to-end latency through the real server on
// loopback with a Go gRPC client at concurrency 1: Health/Check (the floor
// of any call) and Recommend with each model named in RECSERVE_BENCH_MODELS
// (comma-separated; default rnn), for the repository RECSERVE_BENCH_REPO
// over the data set RECSERVE_BENCH_DATA, cycling through 1,000 users. It
// reports p50 and p99; minus the raw Run p50 of the model's
// BenchmarkTrainedRun (models/onnx) it gives the server's overhead
// (docs/PERFORMANCE.md).
func BenchmarkServing(b *testing.B) {
	repo, data := os.Getenv("RECSERVE_BENCH_REPO"), os.Getenv("RECSERVE_BENCH_DATA")
	if repo == "" || data == "" {
		b.Skip("set RECSERVE_BENCH_REPO and RECSERVE_BENCH_DATA")
	}
	names := []string{"rnn"}
	if s := os.Getenv("RECSERVE_BENCH_MODELS"); s != "" {
		names = strings.Split(s, ",")
	}
	d, err := dataset.Read(data)
	if err != nil {
		b.Fatal(err)
	}
	var users []string
	seen := map[string]bool{}
	for _, in := range d.Interactions {
		if !seen[in.UserID] && len(users) < 1000 {
			seen[in.UserID] = true
			users = append(users, in.UserID)
		}
	}
	conn := runServer(b, data, repo, func(c *server.Config) { c.RoutesReload = -1 })
	ctx := context.Background()
	hc := healthpb.NewHealthClient(conn)
	rec := pb.NewRecommendServiceClient(conn)
	measure := func(b *testing.B, call func(i int) error) {
		lat := make([]time.Duration, 0, b.N)
		i := 0
		for b.Loop() {
			start := time.Now()
			if err := call(i); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			i++
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("health", func(b *testing.B) {
		measure(b, func(int) error { _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); return err })
	})
	for _, m := range names {
		b.Run("recommend/model="+m, func(b *testing.B) {
			measure(b, func(i int) error {
				_, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: users[i%len(users)], K: 10, Model: m})
				return err
			})
		})
	}
}
