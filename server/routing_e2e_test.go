package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

	resp, err := http.Get("http://" + debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`recserve_recommend_requests_total{arm="",route="main"} `,
		`recserve_recommend_requests_total{arm="exp/only",route="plain"} `,
		`recserve_recommend_latency_seconds_bucket{arm="exp/only",route="plain",le="+Inf"} `,
		"# TYPE recserve_recommend_latency_seconds histogram",
		`recserve_model_calls_total{model="popularity",version="1"} `,
		"# TYPE recserve_model_call_seconds_total counter",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	var n int
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, `recserve_recommend_requests_total{arm="exp/only",route="plain"} `) {
			fmt.Sscanf(strings.Fields(line)[1], "%d", &n)
		}
	}
	if n < 2 {
		t.Errorf("plain/exp/only counted %d requests; want at least 2", n)
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
