package server_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"

	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRoutesReloadAndMetrics edits routes.yaml under a running server: a
// valid change is picked up, an invalid one is rejected while the previous
// routes keep serving; /metrics counts requests per route and arm.
func TestRoutesReloadAndMetrics(t *testing.T) {
	repo := writeE2ERepo(t)
	debug := freeAddr(t)
	conn := runServer(t, writeE2EData(t), repo, func(c *server.Config) {
		c.RoutesReload = 10 * time.Millisecond
		c.DebugAddr = debug
	})
	rec := pb.NewRecommendServiceClient(conn)
	ctx := t.Context()
	route := func() string {
		t.Helper()
		resp, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: "u1", K: 2})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRoute() + " " + resp.GetArm()
	}
	waitRoute := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := route(); got != want; got = route() {
			if time.Now().After(deadline) {
				t.Fatalf("route = %q; want %q after editing routes.yaml", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := route(); got != "main " {
		t.Fatalf("initial route %q; want main", got)
	}
	path := filepath.Join(repo, "routes.yaml")
	write := func(s string) {
		t.Helper()
		// A new size as well as a new mtime, so coarse file-system clocks
		// cannot hide the change.
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`default_route: plain
fallback: popularity
experiments:
  - name: exp
    arms: [{name: only, route: plain, percent: 100}]
rules:
  - {experiment: exp}
routes:
  - name: plain
    sources: [{model: popularity}]
`)
	waitRoute("plain exp/only")
	write("default_route: nope\nroutes:\n  - name: plain\n    sources: [{model: popularity}]\n")
	time.Sleep(200 * time.Millisecond) // many reload periods
	if got := route(); got != "plain exp/only" {
		t.Errorf("after an invalid routes.yaml the route is %q; want the previous plain exp/only", got)
	}

	mfs := scrape(t, debug)
	for _, tt := range []struct {
		metric string
		labels map[string]string
		min    float64
	}{
		{"recserve_recommend_requests_total", map[string]string{"route": "main", "arm": ""}, 1},
		{"recserve_recommend_requests_total", map[string]string{"route": "plain", "arm": "exp/only"}, 2},
		{"recserve_recommend_latency_seconds", map[string]string{"route": "plain", "arm": "exp/only"}, 2},
		{"recserve_model_calls_total", map[string]string{"model": "popularity", "version": "1"}, 1},
		{"recserve_model_call_seconds_total", map[string]string{"model": "popularity", "version": "1"}, 0},
	} {
		if mfs[tt.metric] == nil {
			t.Errorf("/metrics lacks %s", tt.metric)
			continue
		}
		if got := metricValue(mfs, tt.metric, tt.labels); got < tt.min {
			t.Errorf("%s%v = %v; want at least %v", tt.metric, tt.labels, got, tt.min)
		}
	}
	if got := mfs["recserve_recommend_latency_seconds"].GetType(); got != dto.MetricType_HISTOGRAM {
		t.Errorf("recserve_recommend_latency_seconds is a %v; want a histogram", got)
	}
}

// TestPriceFilter sends the optional price bounds through gRPC: the e2e
// items cost their number (i07 costs 7).
func TestPriceFilter(t *testing.T) {
	conn := runServer(t, writeE2EData(t), writeE2ERepo(t))
	rec := pb.NewRecommendServiceClient(conn)
	lo, hi := 4.0, 9.0
	resp, err := rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: 10,
		Filters: &pb.Filters{PriceMin: &lo, PriceMax: &hi}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range resp.GetItems() {
		got = append(got, it.GetItemId())
	}
	// u1 saw i05, i07; i04, i06, i08, i09 remain, in the route's order.
	slices.Sort(got)
	if want := []string{"i04", "i06", "i08", "i09"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Recommend(price 4..9) = %v; want %v", got, want)
	}
	_, err = rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", Filters: &pb.Filters{PriceMin: &hi, PriceMax: &lo}})
	checkStatus(t, err, codes.InvalidArgument, "filters.price_max")
}
