package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recserve/recserve/internal/redistest"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

// experimentRoutes splits users between route live (arm treatment) and
// route pop (arm control, popularity alone).
const experimentRoutes = `default_route: live
fallback: popularity
routes:
  - name: live
    sources:
      - {model: itemknn, weight: 1}
  - name: pop
    sources:
      - {model: popularity, weight: 1}
experiments:
  - name: homepage
    arms:
      - {name: control, route: pop, percent: 50}
      - {name: treatment, route: live, percent: 50}
rules:
  - context: {page: home}
    experiment: homepage
`

// writeExperimentRepo is the live repository with experimentRoutes and a
// second itemknn version, for a canary.
func writeExperimentRepo(t *testing.T, data string) string {
	t.Helper()
	repo := writeLiveRepo(t, data)
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte(experimentRoutes), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(repo, "itemknn", "2"), os.DirFS(filepath.Join(repo, "itemknn", "1"))); err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestExperimentAttribution follows answers through the real server, on
// Pebble and on Redis: events naming the recommendation_id, events matched
// by the window, another user's event and a purchase after a click, then
// the report by experiment and by model version (a canary's row), and the
// bad queries.
func TestExperimentAttribution(t *testing.T) {
	stores := []struct {
		name string
		opt  func(t *testing.T) func(*server.Config)
	}{
		{"pebble", func(t *testing.T) func(*server.Config) { return withState(filepath.Join(t.TempDir(), "state")) }},
		{"redis", func(t *testing.T) func(*server.Config) {
			url := redistest.Start(t).URL()
			return func(c *server.Config) { c.State, c.StoreURL = "", url }
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) { testExperimentAttribution(t, st.opt(t)) })
	}
}

func testExperimentAttribution(t *testing.T, withStore func(*server.Config)) {
	data := writeLiveData(t)
	repo := writeExperimentRepo(t, data)
	const tok = "experiment-token"
	conn := runServer(t, data, repo, withStore, withToken(tok))
	ctx := t.Context()
	rc, ec, xc := pb.NewRecommendServiceClient(conn), pb.NewEventServiceClient(conn), pb.NewExperimentServiceClient(conn)
	if _, err := pb.NewModelServiceClient(conn).ActivateVersion(bearerCtx(ctx, tok), &pb.ActivateVersionRequest{Name: "itemknn", Version: "1", CanaryPercent: 50}); err != nil {
		t.Fatal(err)
	}

	// Every user of the data set gets one answer on the home page.
	answers := map[string]*pb.RecommendResponse{}
	var users []string
	for g := range liveGroups {
		for u := range 8 {
			user := fmt.Sprintf("g%du%d", g, u)
			resp, err := rc.Recommend(ctx, &pb.RecommendRequest{UserId: user, K: 3, Context: map[string]string{"page": "home"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetItems()) == 0 || !strings.HasPrefix(resp.GetArm(), "homepage/") {
				t.Fatalf("%s: answer %v in arm %q", user, itemIDs(resp), resp.GetArm())
			}
			answers[user] = resp
			users = append(users, user)
		}
	}
	first := func(user string) string { return answers[user].GetItems()[0].GetItemId() }
	var events []*pb.Event
	add := func(user, item, typ, rec string) {
		events = append(events, &pb.Event{EventId: fmt.Sprintf("e%d", len(events)), UserId: user, ItemId: item, Event: typ, RecommendationId: rec})
	}
	clicked := map[string]bool{}
	for i, user := range users {
		switch i % 4 {
		case 0: // a click naming the answer, then a purchase of it
			add(user, first(user), "view", answers[user].GetRecommendationId())
			add(user, first(user), "purchase", answers[user].GetRecommendationId())
			clicked[user] = true
		case 1: // a click matched by the window
			add(user, first(user), "view", "")
			clicked[user] = true
		case 2: // another user's id, on an item this user was not shown: nothing
			other := users[(i+1)%len(users)]
			item := first(other)
			if slices.ContainsFunc(answers[user].GetItems(), func(it *pb.RecommendedItem) bool { return it.GetItemId() == item }) {
				continue
			}
			add(user, item, "view", answers[other].GetRecommendationId())
		}
	}
	if _, err := ec.Track(ctx, &pb.TrackRequest{Events: events}); err != nil {
		t.Fatal(err)
	}

	rep, err := xc.Report(ctx, &pb.ReportRequest{Experiment: "homepage", MinUsers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GetBy() != "arm" || rep.GetControl() != "control" || len(rep.GetRows()) != 2 || rep.GetImpressions() != int64(len(users)) {
		t.Fatalf("report %v", rep)
	}
	want := map[string][3]int64{} // arm → users, clickers, buyers
	for i, user := range users {
		arm := strings.TrimPrefix(answers[user].GetArm(), "homepage/")
		w := want[arm]
		w[0]++
		if clicked[user] {
			w[1]++
		}
		if i%4 == 0 {
			w[2]++
		}
		want[arm] = w
	}
	for _, row := range rep.GetRows() {
		w := want[row.GetName()]
		gotClickers := int64(row.GetCtr().GetValue()*float64(row.GetUsers()) + 0.5)
		gotBuyers := int64(row.GetConversion().GetValue()*float64(row.GetUsers()) + 0.5)
		if row.GetUsers() != w[0] || gotClickers != w[1] || gotBuyers != w[2] || row.GetPurchases() != w[2] {
			t.Errorf("arm %s: users %d, clicked %d, bought %d, purchases %d; want %d, %d, %d, %d",
				row.GetName(), row.GetUsers(), gotClickers, gotBuyers, row.GetPurchases(), w[0], w[1], w[2], w[2])
		}
		wantRoute := map[string]string{"control": "pop", "treatment": "live"}[row.GetName()]
		if row.GetRoute() != wantRoute {
			t.Errorf("arm %s route %q; want %q", row.GetName(), row.GetRoute(), wantRoute)
		}
	}
	if tr := rep.GetRows()[1]; tr.GetCtrLift() == nil || tr.GetDecision() == pb.Decision_DECISION_UNSPECIFIED || tr.GetVerdict() == "" {
		t.Errorf("treatment row without lift or verdict: %v", tr)
	}

	// Version 2 (the latest) is stable, 1 the canary serving about half
	// the treatment's users, in a row of its own.
	byModel, err := xc.Report(ctx, &pb.ReportRequest{Model: "itemknn", MinUsers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var total int64
	for _, row := range byModel.GetRows() {
		names = append(names, fmt.Sprintf("%s canary=%v", row.GetName(), row.GetCanary()))
		total += row.GetUsers()
	}
	if !slices.Equal(names, []string{"1 canary=true", "2 canary=false"}) || total != want["treatment"][0] || byModel.GetControl() != "2" {
		t.Errorf("itemknn rows %v (control %s, %d users); want canary 1 and stable 2 over the treatment's %d users", names, byModel.GetControl(), total, want["treatment"][0])
	}

	bad := []struct {
		name  string
		req   *pb.ReportRequest
		code  codes.Code
		field string
	}{
		{"unknown experiment", &pb.ReportRequest{Experiment: "nope"}, codes.NotFound, "experiment"},
		{"unknown model", &pb.ReportRequest{Model: "nope"}, codes.NotFound, "model"},
		{"since after until", &pb.ReportRequest{Experiment: "homepage", Since: timestamppb.New(time.Now()), Until: timestamppb.New(time.Now().Add(-time.Hour))}, codes.InvalidArgument, "since"},
		{"no target", &pb.ReportRequest{}, codes.InvalidArgument, "experiment"},
		{"bad metric", &pb.ReportRequest{Experiment: "homepage", Metric: "clicks"}, codes.InvalidArgument, "metric"},
	}
	for _, tt := range bad {
		_, err := xc.Report(ctx, tt.req)
		if status.Code(err) != tt.code || !slices.Contains(fieldViolations(err), tt.field) {
			t.Errorf("%s: %v; want %s naming %s", tt.name, err, tt.code, tt.field)
		}
	}
}

// TestExperimentWithoutStateStore: reports need the stored impressions.
func TestExperimentWithoutStateStore(t *testing.T) {
	data := writeLiveData(t)
	conn := runServer(t, data, writeExperimentRepo(t, data), func(c *server.Config) { c.State = "" })
	_, err := pb.NewExperimentServiceClient(conn).Report(t.Context(), &pb.ReportRequest{Experiment: "homepage"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Report without a state store: %v; want FailedPrecondition", err)
	}
}
