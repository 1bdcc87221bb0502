package server_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// propensityModel is an XGBoost JSON model over two pipeline features, so
// its scores can be derived by hand: margin = (ui_carts < 0.5 ? -2 : 2) +
// (ui_category_share < 0.5 ? -1 : 1), missing going left, base score 0.5
// (margin 0), output sigmoid(margin).
const propensityModel = `{"learner":{
 "feature_names":["ui_carts","ui_category_share"],
 "learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"2"},
 "objective":{"name":"binary:logistic"},
 "gradient_booster":{"name":"gbtree","model":{
  "gbtree_model_param":{"num_parallel_tree":"1","num_trees":"2"},
  "tree_info":[0,0],
  "trees":[
   {"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],
    "split_conditions":[0.5,-2,2],"default_left":[1,0,0],"split_type":[0,0,0],
    "tree_param":{"num_nodes":"3","size_leaf_vector":"1"}},
   {"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[1,0,0],
    "split_conditions":[0.5,-1,1],"default_left":[1,0,0],"split_type":[0,0,0],
    "tree_param":{"num_nodes":"3","size_leaf_vector":"1"}}]}}},
 "version":[1,7,4]}`

// writePropensityData: shoes p01..p06, hats p07..p12. a viewed and carted
// p01 and viewed p02; b viewed p07 then p01; c bought p02; d viewed p08.
func writePropensityData(t *testing.T) string {
	t.Helper()
	d := &dataset.Dataset{}
	for n := 1; n <= 12; n++ {
		cat := "shoes"
		if n > 6 {
			cat = "hats"
		}
		d.Items = append(d.Items, dataset.Item{ID: fmt.Sprintf("p%02d", n), Category: cat, Price: float64(10 * n)})
	}
	ev := func(u, i string, e dataset.Event, ts int64) dataset.Interaction {
		return dataset.Interaction{UserID: u, ItemID: i, Event: e, Value: 1, Timestamp: ts}
	}
	d.Interactions = []dataset.Interaction{
		ev("a", "p01", dataset.View, 100), ev("a", "p01", dataset.Cart, 110), ev("a", "p02", dataset.View, 120),
		ev("b", "p07", dataset.View, 100), ev("b", "p01", dataset.View, 200),
		ev("c", "p02", dataset.Purchase, 300),
		ev("d", "p08", dataset.View, 400),
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := dataset.Write(dir, d); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writePropensityRepo: propensity (gbm, the default scorer), tea (gbm over a
// feature the pipeline does not compute: fails to load), pop (popularity).
func writePropensityRepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	write := func(name, file, content string, spec models.Spec) {
		dir := filepath.Join(repo, name, "1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if file != "" {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := models.WriteSpec(dir, spec); err != nil {
			t.Fatal(err)
		}
	}
	write("propensity", "model.json", propensityModel, models.Spec{Kind: "gbm", File: "model.json"})
	write("tea", "model.json", strings.Replace(propensityModel, `"ui_category_share"]`, `"price_of_tea"]`, 1),
		models.Spec{Kind: "gbm", File: "model.json"})
	var entries []popularity.Entry
	for n := 1; n <= 12; n++ {
		entries = append(entries, popularity.Entry{ItemID: fmt.Sprintf("p%02d", n), Score: float64(20 - n)})
	}
	table, err := popularity.New(entries, popularity.Global)
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := table.Save(&buf); err != nil {
		t.Fatal(err)
	}
	write("pop", popularity.DefaultFile, buf.String(), models.Spec{Kind: popularity.Kind, File: popularity.DefaultFile})
	routes := "default_route: main\nfallback: pop\ndefault_scorer: propensity\nroutes:\n  - name: main\n    sources:\n      - model: pop\n"
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

func TestPropensityEndToEnd(t *testing.T) {
	conn := runServer(t, writePropensityData(t), writePropensityRepo(t))
	rec := pb.NewRecommendServiceClient(conn)
	ms := pb.NewModelServiceClient(conn)
	ctx := t.Context()
	near := func(got, want []float64) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-6 {
				return false
			}
		}
		return true
	}

	t.Run("model roles and binding errors", func(t *testing.T) {
		m, err := ms.GetModel(ctx, &pb.GetModelRequest{Name: "propensity"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(m.GetModel().GetRoles(), "scorer") {
			t.Errorf("propensity roles = %v; want scorer", m.GetModel().GetRoles())
		}
		m, err = ms.GetModel(ctx, &pb.GetModelRequest{Name: "tea"})
		if err != nil {
			t.Fatal(err)
		}
		if m.GetModel().GetState() != pb.ModelState_MODEL_STATE_FAILED || !strings.Contains(m.GetModel().GetError(), "price_of_tea") {
			t.Errorf("tea = %v, %q; want FAILED naming price_of_tea", m.GetModel().GetState(), m.GetModel().GetError())
		}
	})

	t.Run("score", func(t *testing.T) {
		tests := []struct {
			user  string
			items []string
			want  []float64
		}{
			// a carted p01 and is all shoes; p07 is a hat a never touched.
			{"a", []string{"p01", "p07"}, []float64{sigmoid(3), sigmoid(-3)}},
			{"b", []string{"p01"}, []float64{sigmoid(-1)}}, // half shoes, half hats
			{"d", []string{"p01", "p08"}, []float64{sigmoid(-3), sigmoid(-1)}},
			{"stranger", []string{"p01"}, []float64{sigmoid(-3)}}, // missing share goes left
		}
		for _, tt := range tests {
			resp, err := rec.Score(ctx, &pb.ScoreRequest{UserId: tt.user, ItemIds: tt.items})
			if err != nil {
				t.Fatalf("Score(%s, %v): %v", tt.user, tt.items, err)
			}
			if !near(resp.GetScores(), tt.want) {
				t.Errorf("Score(%s, %v) = %v; want %v", tt.user, tt.items, resp.GetScores(), tt.want)
			}
			if resp.GetModel().GetName() != "propensity" {
				t.Errorf("Score().model = %v; want propensity", resp.GetModel())
			}
		}
		// Session items join the history: d's session on p01, p02 makes
		// d's history 2/3 shoes.
		resp, err := rec.Score(ctx, &pb.ScoreRequest{UserId: "d", ItemIds: []string{"p03"}, SessionItems: []string{"p01", "p02"}})
		if err != nil || !near(resp.GetScores(), []float64{sigmoid(-1)}) {
			t.Errorf("Score(d + session, p03) = %v, %v; want [%v]", resp.GetScores(), err, sigmoid(-1))
		}
		// The maximum request: 10,000 items, scores in request order.
		many := make([]string, 10000)
		for i := range many {
			many[i] = []string{"p01", "p07"}[i%2]
		}
		resp, err = rec.Score(ctx, &pb.ScoreRequest{UserId: "a", ItemIds: many})
		if err != nil {
			t.Fatalf("Score(10,000 items): %v", err)
		}
		for i, s := range resp.GetScores() {
			if want := []float64{sigmoid(3), sigmoid(-3)}[i%2]; math.Abs(s-want) > 1e-6 {
				t.Fatalf("Score(10,000 items)[%d] = %v; want %v", i, s, want)
			}
		}
		if len(resp.GetScores()) != 10000 {
			t.Errorf("Score(10,000 items) returned %d scores", len(resp.GetScores()))
		}
	})

	t.Run("target audience", func(t *testing.T) {
		type member struct {
			user  string
			score float64
		}
		get := func(req *pb.TargetAudienceRequest) ([]member, *pb.TargetAudienceResponse) {
			t.Helper()
			resp, err := rec.TargetAudience(ctx, req)
			if err != nil {
				t.Fatalf("TargetAudience(%v): %v", req, err)
			}
			var out []member
			for _, u := range resp.GetUsers() {
				out = append(out, member{u.GetUserId(), u.GetScore()})
			}
			return out, resp
		}
		// p01: a (touched it), b (touched it), then shoes users: c. d only
		// engaged with hats and is no candidate.
		got, resp := get(&pb.TargetAudienceRequest{ItemId: "p01"})
		want := []member{{"a", sigmoid(3)}, {"b", sigmoid(-1)}, {"c", sigmoid(-1)}}
		if len(got) != len(want) {
			t.Fatalf("TargetAudience(p01) = %v; want %v", got, want)
		}
		for i := range want {
			if got[i].user != want[i].user || math.Abs(got[i].score-want[i].score) > 1e-6 {
				t.Errorf("TargetAudience(p01)[%d] = %v; want %v", i, got[i], want[i])
			}
		}
		if resp.GetCandidates() != 3 || resp.GetModel().GetName() != "propensity" || !slices.Equal(resp.GetItems(), []string{"p01"}) {
			t.Errorf("TargetAudience(p01) candidates %d model %v items %v; want 3 propensity [p01]",
				resp.GetCandidates(), resp.GetModel(), resp.GetItems())
		}
		got, _ = get(&pb.TargetAudienceRequest{ItemId: "p01", N: 1})
		if len(got) != 1 || got[0].user != "a" {
			t.Errorf("TargetAudience(p01, n=1) = %v; want [a]", got)
		}
		// Buyers of p02 (c) are left out unless asked for.
		users := func(ms []member) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.user)
			}
			slices.Sort(out)
			return out
		}
		if got, _ := get(&pb.TargetAudienceRequest{ItemId: "p02"}); slices.Contains(users(got), "c") {
			t.Errorf("TargetAudience(p02) = %v; want the buyer c left out", got)
		}
		if got, _ := get(&pb.TargetAudienceRequest{ItemId: "p02", IncludeBuyers: true}); !slices.Contains(users(got), "c") {
			t.Errorf("TargetAudience(p02, include_buyers) = %v; want c in", got)
		}
		// A category scores its most engaged items: p07 and p08 (one view
		// each), then p09..p11 in id order.
		got, resp = get(&pb.TargetAudienceRequest{Category: "hats"})
		if !slices.Equal(users(got), []string{"b", "d"}) || !slices.Equal(resp.GetItems(), []string{"p07", "p08", "p09", "p10", "p11"}) {
			t.Errorf("TargetAudience(hats) = %v over %v; want b, d over p07..p11", got, resp.GetItems())
		}
		got, _ = get(&pb.TargetAudienceRequest{ItemId: "p01", MaxCandidates: 1})
		if len(got) != 1 || got[0].user != "a" {
			t.Errorf("TargetAudience(p01, max_candidates=1) = %v; want [a]", got)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tooMany := make([]string, 10001)
		for i := range tooMany {
			tooMany[i] = "p01"
		}
		tests := []struct {
			name     string
			score    *pb.ScoreRequest
			audience *pb.TargetAudienceRequest
			code     codes.Code
			field    string
		}{
			{name: "score 10,001 items", score: &pb.ScoreRequest{UserId: "a", ItemIds: tooMany}, code: codes.InvalidArgument, field: "item_ids"},
			{name: "score unknown item", score: &pb.ScoreRequest{UserId: "a", ItemIds: []string{"p01", "p99"}}, code: codes.NotFound, field: "item_ids[1]"},
			{name: "score NaN context", score: &pb.ScoreRequest{UserId: "a", ItemIds: []string{"p01"}, Context: map[string]string{"budget": "NaN"}}, code: codes.InvalidArgument, field: `context["budget"]`},
			{name: "score with a model that failed", score: &pb.ScoreRequest{UserId: "a", ItemIds: []string{"p01"}, Model: "tea"}, code: codes.FailedPrecondition, field: "model"},
			{name: "audience without target", audience: &pb.TargetAudienceRequest{}, code: codes.InvalidArgument, field: "item_id"},
			{name: "audience item and category", audience: &pb.TargetAudienceRequest{ItemId: "p01", Category: "hats"}, code: codes.InvalidArgument, field: "category"},
			{name: "audience unknown item", audience: &pb.TargetAudienceRequest{ItemId: "p99"}, code: codes.NotFound, field: "item_id"},
			{name: "audience unknown category", audience: &pb.TargetAudienceRequest{Category: "tea"}, code: codes.NotFound, field: "category"},
			{name: "audience n too large", audience: &pb.TargetAudienceRequest{ItemId: "p01", N: 10001}, code: codes.InvalidArgument, field: "n"},
			{name: "audience negative max_candidates", audience: &pb.TargetAudienceRequest{ItemId: "p01", MaxCandidates: -1}, code: codes.InvalidArgument, field: "max_candidates"},
			{name: "audience infinite context", audience: &pb.TargetAudienceRequest{ItemId: "p01", Context: map[string]string{"x": "+Inf"}}, code: codes.InvalidArgument, field: `context["x"]`},
			{name: "audience unknown model", audience: &pb.TargetAudienceRequest{ItemId: "p01", Model: "nope"}, code: codes.NotFound, field: "model"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var err error
				if tt.score != nil {
					_, err = rec.Score(ctx, tt.score)
				} else {
					_, err = rec.TargetAudience(ctx, tt.audience)
				}
				checkStatus(t, err, tt.code, tt.field)
			})
		}
	})
}

// checkStatus fails unless err has code and a BadRequest naming exactly field.
func checkStatus(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Errorf("code = %v (%v); want %v", got, err, code)
	}
	if got := fieldViolations(err); !slices.Equal(got, []string{field}) {
		t.Errorf("field violations = %q (%v); want [%q]", got, err, field)
	}
}
