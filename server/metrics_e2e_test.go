package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/onnx"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

// scrape GETs http://addr/metrics and parses it.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metricValue is the value of the series of mfs[name] with exactly the
// labels given (name=value pairs in any order): a counter's value or a
// histogram's sample count; 0 when there is no such series (a series
// appears on first use), -1 when the metric is not of that type.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
		return -1
	}
	return 0
}

// TestMetricsScrape calls a real server and scrapes its debug address: the
// RPC, route and model-version latency histograms, the batch histograms of a
// batched onnx version (when onnxruntime is installed) and the Go runtime's
// collectors all appear, with the labels and counts of the calls made.
// Counts are differences between two scrapes, since loading probes the
// models.
func TestMetricsScrape(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	withONNX := false
	if lib, err := onnx.FindLibrary(); err != nil || !fileExists(lib) {
		t.Logf("onnxruntime library not found (%q, %v): the batch histograms are not checked", lib, err)
	} else {
		withONNX = true
		dir := filepath.Join(repo, "uv", "1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"user_vector.onnx", "items.txt"} {
			b, err := os.ReadFile(filepath.Join("..", "models", "onnx", "testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := models.WriteSpec(dir, models.Spec{Kind: onnx.Kind, File: "user_vector.onnx", Items: "items.txt",
			Signature: onnx.UserVector, Params: map[string]any{"max_batch_size": 8, "max_queue_delay_us": 100}}); err != nil {
			t.Fatal(err)
		}
	}
	debug := freeAddr(t)
	conn := runServer(t, data, repo, func(c *server.Config) { c.DebugAddr = debug }, withState(filepath.Join(t.TempDir(), "state")))
	rec := pb.NewRecommendServiceClient(conn)
	ev := pb.NewEventServiceClient(conn)

	before := scrape(t, debug)
	const routed, direct = 3, 2
	var last *pb.RecommendResponse
	for range routed {
		var err error
		if last, err = rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if withONNX {
		for range direct {
			if _, err := rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: 3, Model: "uv"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: -1})
	if err == nil {
		t.Fatal("Recommend(k=-1) error = nil; want InvalidArgument")
	}
	// Three events of a user without answers, one of them a retry of an
	// event already stored.
	for _, id := range []string{"m1", "m2", "m1"} {
		if _, err := ev.Track(t.Context(), &pb.TrackRequest{Events: []*pb.Event{{EventId: id, UserId: "u9", ItemId: "i01", Event: "view"}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A purchase from the last answer, attributed to it.
	if _, err := ev.Track(t.Context(), &pb.TrackRequest{Events: []*pb.Event{{EventId: "m3", UserId: "u1",
		ItemId: last.GetItems()[0].GetItemId(), Event: "purchase", RecommendationId: last.GetRecommendationId()}}}); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, debug)

	rpc := func(code string) map[string]string {
		l := map[string]string{"grpc_service": "recserve.v1.RecommendService", "grpc_method": "Recommend", "grpc_type": "unary"}
		if code != "" {
			l["grpc_code"] = code
		}
		return l
	}
	calls := float64(routed + 1)
	onnxCalls := 0.0
	if withONNX {
		calls += direct
		onnxCalls = direct
	}
	tests := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"grpc_server_handling_seconds", rpc(""), calls},
		{"grpc_server_started_total", rpc(""), calls},
		{"grpc_server_handled_total", rpc("OK"), calls - 1},
		{"grpc_server_handled_total", rpc("InvalidArgument"), 1},
		{"recserve_recommend_latency_seconds", map[string]string{"route": "main", "arm": ""}, routed},
		{"recserve_recommend_requests_total", map[string]string{"route": "main", "arm": ""}, routed},
		{"recserve_model_call_duration_seconds", map[string]string{"model": "popularity", "version": "1"}, routed},
		{"recserve_model_calls_total", map[string]string{"model": "popcat", "version": "1"}, routed},
		{"recserve_model_call_duration_seconds", map[string]string{"model": "uv", "version": "1"}, onnxCalls},
		// One row per request.
		{"recserve_batch_queue_wait_seconds", map[string]string{"model": "uv", "version": "1"}, onnxCalls},
		{"recserve_events_accepted_total", map[string]string{"method": "Track"}, 4},
		{"recserve_attributed_events_total", map[string]string{"route": "main", "arm": "", "outcome": "purchase"}, 1},
		{"recserve_model_attributed_events_total", map[string]string{"model": "popcat", "version": "1", "outcome": "purchase"}, 1},
		{"recserve_impressions_total", map[string]string{"route": "main", "arm": ""}, routed},
		{"recserve_model_impressions_total", map[string]string{"model": "popcat", "version": "1"}, routed},
		{"recserve_events_duplicates_total", map[string]string{"method": "Track"}, 1},
	}
	for _, tt := range tests {
		if got := metricValue(after, tt.metric, tt.labels) - metricValue(before, tt.metric, tt.labels); got != tt.want {
			t.Errorf("%s%v went up by %v; want %v", tt.metric, tt.labels, got, tt.want)
		}
	}
	if withONNX {
		uv := map[string]string{"model": "uv", "version": "1"}
		runs := metricValue(after, "recserve_batch_run_seconds", uv) - metricValue(before, "recserve_batch_run_seconds", uv)
		if runs < 1 || runs > direct {
			t.Errorf("recserve_batch_run_seconds went up by %v; want 1..%d (one Run per batch)", runs, direct)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "recserve_batch_rows"} {
		if name == "recserve_batch_rows" && !withONNX {
			continue
		}
		if after[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
