package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

// TestMain fails the package if any test leaves a goroutine behind (servers,
// client connections, handlers).
//
// lumberjack (the impression log's rotation) keeps one goroutine per
// Logger after Close, a known upstream bug (natefinch/lumberjack#56, #205,
// open): one per process in the server, ignored here by name.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}

// e2eHistory is the stored history of each known user of the e2e data set.
var e2eHistory = map[string][]string{
	"u1": {"i05", "i07", "i10"},
	"u2": {"i01", "i02"},
	"u3": {"i03", "i30", "i12", "i21"},
}

// writeE2EData writes a data set of 30 items in categories c0..c2 and the
// users of e2eHistory, and returns its directory.
func writeE2EData(t *testing.T) string {
	t.Helper()
	d := &dataset.Dataset{}
	for n := 1; n <= 30; n++ {
		d.Items = append(d.Items, dataset.Item{
			ID: fmt.Sprintf("i%02d", n), Title: fmt.Sprintf("Item %d", n),
			Category: fmt.Sprintf("c%d", n%3), Price: float64(n),
		})
	}
	users := make([]string, 0, len(e2eHistory))
	for u := range e2eHistory {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		for i, id := range e2eHistory[u] {
			d.Interactions = append(d.Interactions, dataset.Interaction{
				UserID: u, ItemID: id, Event: dataset.View, Value: 1, Timestamp: int64(1000 + i),
			})
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := dataset.Write(dir, d); err != nil {
		t.Fatalf("dataset.Write: %v", err)
	}
	return dir
}

// writeE2ERepo writes a repository with
//
//	popularity/1  global popularity, i01 most popular
//	popcat/1      the same table, category scope
//	broken/1      an unknown kind (fails to load)
//	routes.yaml   route main = popularity + popcat, fallback popularity
func writeE2ERepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	var entries []popularity.Entry
	for n := 1; n <= 30; n++ {
		entries = append(entries, popularity.Entry{
			ItemID: fmt.Sprintf("i%02d", n), Category: fmt.Sprintf("c%d", n%3), Score: float64(100 - n),
		})
	}
	table, err := popularity.New(entries, popularity.Global)
	if err != nil {
		t.Fatal(err)
	}
	save := func(name string, spec models.Spec) {
		dir := filepath.Join(repo, name, "1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, popularity.DefaultFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := table.Save(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := models.WriteSpec(dir, spec); err != nil {
			t.Fatal(err)
		}
	}
	save("popularity", models.Spec{Kind: popularity.Kind, File: popularity.DefaultFile, Metadata: map[string]any{"dataset": "e2e", "hit_rate": 0.5}})
	save("popcat", models.Spec{Kind: popularity.Kind, Params: map[string]any{"scope": "category"}})
	save("broken", models.Spec{Kind: "mystery"})
	routes := `default_route: main
fallback: popularity
routes:
  - name: main
    sources:
      - model: popularity
      - model: popcat
  - name: plain
    sources:
      - model: popularity
`
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

// runServer starts server.Run on 127.0.0.1:0 and returns a client connection
// once health reports SERVING. Teardown closes the connection, cancels Run's
// context and requires Run to return nil.
func runServer(t testing.TB, data, repo string, opts ...func(*server.Config)) *grpc.ClientConn {
	t.Helper()
	cfg := server.Config{Addr: "127.0.0.1:0", Repo: repo, Data: data, Server: server.DefaultOptions()}
	for _, o := range opts {
		o(&cfg)
	}
	conn := dial(t, startRun(t, cfg)) // closed before Run is cancelled
	waitServing(t, healthpb.NewHealthClient(conn), "")
	return conn
}

// startRun starts server.Run(cfg) and returns its address once it listens.
// Teardown cancels Run's context and requires Run to return nil.
func startRun(t testing.TB, cfg server.Config) string {
	t.Helper()
	addr, _ := startStoppable(t, cfg)
	return addr
}

// startStoppable is startRun that also returns stop, which cancels Run and
// requires it to return nil; it is idempotent and runs at teardown if the
// test has not called it, so a test can restart a server on one repository.
func startStoppable(t testing.TB, cfg server.Config) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	runErr := make(chan error, 1)
	go func() { runErr <- server.Run(ctx, cfg, nil, func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-runErr:
		cancel()
		t.Fatalf("server.Run returned before listening: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-runErr; err != nil {
				t.Errorf("server.Run() = %v after cancel; want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return addr.String(), stop
}

// waitServing polls Health/Check with a short deadline until service is
// SERVING, failing the test after 20s.
func waitServing(t testing.TB, hc healthpb.HealthClient, service string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %q never became SERVING: last %v, %v", service, resp.GetStatus(), err)
		}
		<-tick.C
	}
}

// listServices asks server reflection (v1) for the service names.
func listServices(t *testing.T, conn *grpc.ClientConn) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""},
	}); err != nil {
		if err == io.EOF { // the stream failed; Recv has the status
			_, err = stream.Recv()
		}
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	// Also resolve a symbol, as grpcurl does before calling a method.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "recserve.v1.RecommendService"},
	}); err != nil {
		return nil, err
	}
	fd, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if len(fd.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		return nil, fmt.Errorf("reflection: no file descriptor for recserve.v1.RecommendService: %v", fd.GetErrorResponse())
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	if _, err := stream.Recv(); err != io.EOF {
		return nil, fmt.Errorf("reflection stream end: %v; want EOF", err)
	}
	return names, nil
}

// fieldViolations returns the BadRequest field names in err's status.
func fieldViolations(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestEndToEnd(t *testing.T) {
	conn := runServer(t, writeE2EData(t), writeE2ERepo(t))
	rec := pb.NewRecommendServiceClient(conn)
	ms := pb.NewModelServiceClient(conn)
	ctx := t.Context()

	t.Run("health", func(t *testing.T) {
		hc := healthpb.NewHealthClient(conn)
		for _, s := range []string{"", "recserve.v1.RecommendService", "recserve.v1.ModelService"} {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: s})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("Health.Check(%q) = %v, %v; want SERVING", s, resp.GetStatus(), err)
			}
		}
	})

	t.Run("reflection", func(t *testing.T) {
		names, err := listServices(t, conn)
		if err != nil {
			t.Fatalf("reflection: %v", err)
		}
		for _, want := range []string{"recserve.v1.RecommendService", "recserve.v1.ModelService", "grpc.health.v1.Health"} {
			if !slices.Contains(names, want) {
				t.Errorf("reflection ListServices = %v; want it to include %s", names, want)
			}
		}
	})

	t.Run("recommend known users", func(t *testing.T) {
		for _, user := range []string{"u1", "u2", "u3"} {
			const k = 5
			resp, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: user, K: k})
			if err != nil {
				t.Fatalf("Recommend(%s) = %v", user, err)
			}
			if got := len(resp.GetItems()); got != k {
				t.Errorf("Recommend(%s) returned %d items; want %d", user, got, k)
			}
			if resp.GetColdStart() {
				t.Errorf("Recommend(%s).cold_start = true; want false", user)
			}
			if resp.GetRoute() != "main" {
				t.Errorf("Recommend(%s).route = %q; want main", user, resp.GetRoute())
			}
			wantMV := []*pb.ModelVersion{{Name: "popularity", Version: "1"}, {Name: "popcat", Version: "1"}}
			if !equalMV(resp.GetModelVersions(), wantMV) {
				t.Errorf("Recommend(%s).model_versions = %v; want %v", user, resp.GetModelVersions(), wantMV)
			}
			seen := map[string]bool{}
			for i, it := range resp.GetItems() {
				if slices.Contains(e2eHistory[user], it.GetItemId()) {
					t.Errorf("Recommend(%s) returned %s from the user's history", user, it.GetItemId())
				}
				if seen[it.GetItemId()] {
					t.Errorf("Recommend(%s) returned %s twice", user, it.GetItemId())
				}
				seen[it.GetItemId()] = true
				if len(it.GetSources()) == 0 {
					t.Errorf("Recommend(%s) item %s has no sources", user, it.GetItemId())
				}
				for _, s := range it.GetSources() {
					if s != "popularity" && s != "popcat" {
						t.Errorf("Recommend(%s) item %s source %q; want popularity or popcat", user, it.GetItemId(), s)
					}
				}
				if i > 0 && it.GetScore() > resp.GetItems()[i-1].GetScore() {
					t.Errorf("Recommend(%s) scores not descending at %d: %v", user, i, resp.GetItems())
				}
			}
		}
	})

	t.Run("recommend plain route is global popularity", func(t *testing.T) {
		resp, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: "u2", K: 3, Route: "plain"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := itemIDs(resp), []string{"i03", "i04", "i05"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Recommend(u2, route plain) = %v; want %v (i01, i02 seen)", got, want)
		}
		resp, err = rec.Recommend(ctx, &pb.RecommendRequest{UserId: "u2", K: 3, Route: "plain", Filters: &pb.Filters{IncludeSeen: true, ExcludeItems: []string{"i03"}, ExcludeCategories: []string{"c2"}}})
		if err != nil {
			t.Fatal(err)
		}
		// c2 holds i02, i05, ...; i01 is seen but include_seen is on.
		if got, want := itemIDs(resp), []string{"i01", "i04", "i06"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Recommend(u2, plain, filters) = %v; want %v", got, want)
		}
	})

	t.Run("recommend model override", func(t *testing.T) {
		resp, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: "u1", K: 2, Model: "popularity"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetRoute() != "model:popularity" || !reflect.DeepEqual(itemIDs(resp), []string{"i01", "i02"}) {
			t.Errorf("Recommend(model=popularity) = route %q items %v; want model:popularity [i01 i02]", resp.GetRoute(), itemIDs(resp))
		}
	})

	t.Run("cold start", func(t *testing.T) {
		resp, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: "stranger", K: 4})
		if err != nil {
			t.Fatalf("Recommend(unknown user) = %v; want success", err)
		}
		if !resp.GetColdStart() {
			t.Errorf("Recommend(unknown user).cold_start = false; want true")
		}
		if got, want := itemIDs(resp), []string{"i01", "i02", "i03", "i04"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Recommend(unknown user) = %v; want %v", got, want)
		}
		for _, it := range resp.GetItems() {
			if !reflect.DeepEqual(it.GetSources(), []string{"popularity"}) {
				t.Errorf("Recommend(unknown user) item %s sources = %v; want [popularity]", it.GetItemId(), it.GetSources())
			}
		}
		if want := []*pb.ModelVersion{{Name: "popularity", Version: "1"}}; !equalMV(resp.GetModelVersions(), want) {
			t.Errorf("Recommend(unknown user).model_versions = %v; want %v", resp.GetModelVersions(), want)
		}
		// Default k.
		resp, err = rec.Recommend(ctx, &pb.RecommendRequest{UserId: "stranger"})
		if err != nil || len(resp.GetItems()) != 10 {
			t.Errorf("Recommend(k unset) = %d items, %v; want 10", len(resp.GetItems()), err)
		}
	})

	t.Run("score", func(t *testing.T) {
		resp, err := rec.Score(ctx, &pb.ScoreRequest{UserId: "u1", ItemIds: []string{"i30", "i01"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := resp.GetScores(), []float64{70.0 / 99, 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("Score(i30, i01) = %v; want %v", got, want)
		}
		if m := resp.GetModel(); m.GetName() != "popularity" || m.GetVersion() != "1" {
			t.Errorf("Score().model = %v; want popularity 1", m)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tooMany := make([]string, 10001)
		for i := range tooMany {
			tooMany[i] = "i01"
		}
		// Exactly one of recommend, score and get is set.
		tests := []struct {
			name      string
			recommend *pb.RecommendRequest
			score     *pb.ScoreRequest
			get       *pb.GetModelRequest
			code      codes.Code
			field     string
		}{
			{name: "k=-1", recommend: &pb.RecommendRequest{UserId: "u1", K: -1}, code: codes.InvalidArgument, field: "k"},
			{name: "k=1001", recommend: &pb.RecommendRequest{UserId: "u1", K: 1001}, code: codes.InvalidArgument, field: "k"},
			{name: "no user or session", recommend: &pb.RecommendRequest{K: 5}, code: codes.InvalidArgument, field: "user_id"},
			{name: "empty session item", recommend: &pb.RecommendRequest{SessionItems: []string{"i01", ""}}, code: codes.InvalidArgument, field: "session_items[1]"},
			{name: "unknown model", recommend: &pb.RecommendRequest{UserId: "u1", Model: "nope"}, code: codes.NotFound, field: "model"},
			{name: "failed model", recommend: &pb.RecommendRequest{UserId: "u1", Model: "broken"}, code: codes.FailedPrecondition, field: "model"},
			{name: "unknown route", recommend: &pb.RecommendRequest{UserId: "u1", Route: "nope"}, code: codes.NotFound, field: "route"},
			{name: "score without items", score: &pb.ScoreRequest{UserId: "u1"}, code: codes.InvalidArgument, field: "item_ids"},
			{name: "score too many items", score: &pb.ScoreRequest{UserId: "u1", ItemIds: tooMany}, code: codes.InvalidArgument, field: "item_ids"},
			{name: "score empty item", score: &pb.ScoreRequest{UserId: "u1", ItemIds: []string{""}}, code: codes.InvalidArgument, field: "item_ids[0]"},
			{name: "score without user", score: &pb.ScoreRequest{ItemIds: []string{"i01"}}, code: codes.InvalidArgument, field: "user_id"},
			{name: "score unknown item", score: &pb.ScoreRequest{UserId: "u1", ItemIds: []string{"i01", "nope"}}, code: codes.NotFound, field: "item_ids[1]"},
			{name: "score NaN context", score: &pb.ScoreRequest{UserId: "u1", ItemIds: []string{"i01"}, Context: map[string]string{"budget": "NaN"}}, code: codes.InvalidArgument, field: `context["budget"]`},
			{name: "score unknown model", score: &pb.ScoreRequest{UserId: "u1", ItemIds: []string{"i01"}, Model: "nope"}, code: codes.NotFound, field: "model"},
			{name: "get model without name", get: &pb.GetModelRequest{}, code: codes.InvalidArgument, field: "name"},
			{name: "get unknown model", get: &pb.GetModelRequest{Name: "nope"}, code: codes.NotFound, field: "name"},
		}
		for _, tt := range tests {
			var err error
			switch {
			case tt.recommend != nil:
				_, err = rec.Recommend(ctx, tt.recommend)
			case tt.score != nil:
				_, err = rec.Score(ctx, tt.score)
			default:
				_, err = ms.GetModel(ctx, tt.get)
			}
			if got := status.Code(err); got != tt.code {
				t.Errorf("%s: code = %v (%v); want %v", tt.name, got, err, tt.code)
			}
			if got := fieldViolations(err); !reflect.DeepEqual(got, []string{tt.field}) {
				t.Errorf("%s: field violations = %q; want [%q]", tt.name, got, tt.field)
			}
		}
	})

	t.Run("expired deadline", func(t *testing.T) {
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		if _, err := rec.Recommend(dctx, &pb.RecommendRequest{UserId: "u1"}); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("Recommend(expired deadline) = %v; want DeadlineExceeded", err)
		}
		if _, err := rec.Score(dctx, &pb.ScoreRequest{UserId: "u1", ItemIds: []string{"i01"}}); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("Score(expired deadline) = %v; want DeadlineExceeded", err)
		}
	})

	t.Run("models", func(t *testing.T) {
		list, err := ms.ListModels(ctx, &pb.ListModelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		byName := map[string]*pb.ModelInfo{}
		for _, m := range list.GetModels() {
			names = append(names, m.GetName())
			byName[m.GetName()] = m
		}
		if want := []string{"broken", "popcat", "popularity"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("ListModels names = %v; want %v", names, want)
		}
		pop := byName["popularity"]
		if pop.GetKind() != "popularity" || pop.GetActiveVersion() != "1" || !reflect.DeepEqual(pop.GetVersions(), []string{"1"}) ||
			pop.GetState() != pb.ModelState_MODEL_STATE_READY || pop.GetError() != "" ||
			!reflect.DeepEqual(pop.GetRoles(), []string{"recommender", "scorer"}) ||
			!reflect.DeepEqual(pop.GetMetadata(), map[string]string{"dataset": "e2e", "hit_rate": "0.5"}) ||
			pop.GetLoadedAt() == 0 {
			t.Errorf("ListModels popularity = %v; want ready kind popularity version 1, roles, metadata, loaded_at", pop)
		}
		broken := byName["broken"]
		if broken.GetState() != pb.ModelState_MODEL_STATE_FAILED || broken.GetKind() != "mystery" ||
			!strings.Contains(broken.GetError(), `unknown model kind "mystery"`) || broken.GetActiveVersion() != "" {
			t.Errorf("ListModels broken = %v; want FAILED kind mystery with the load error", broken)
		}
		got, err := ms.GetModel(ctx, &pb.GetModelRequest{Name: "popularity"})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetModel(), pop) {
			t.Errorf("GetModel(popularity) = %v; want %v", got.GetModel(), pop)
		}
	})
}

func itemIDs(resp *pb.RecommendResponse) []string {
	var out []string
	for _, it := range resp.GetItems() {
		out = append(out, it.GetItemId())
	}
	return out
}

func equalMV(a, b []*pb.ModelVersion) bool {
	return slices.EqualFunc(a, b, func(x, y *pb.ModelVersion) bool { return proto.Equal(x, y) })
}

func TestRunDefaultRoutes(t *testing.T) {
	repo := writeE2ERepo(t)
	if err := os.Remove(filepath.Join(repo, "routes.yaml")); err != nil {
		t.Fatal(err)
	}
	conn := runServer(t, writeE2EData(t), repo)
	resp, err := pb.NewRecommendServiceClient(conn).Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: 2})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRoute() != "default" || !reflect.DeepEqual(itemIDs(resp), []string{"i01", "i02"}) {
		t.Errorf("Recommend without routes.yaml = route %q items %v; want default [i01 i02]", resp.GetRoute(), itemIDs(resp))
	}
}

func TestRunErrors(t *testing.T) {
	data := writeE2EData(t)
	repo := writeE2ERepo(t)
	badRoutes := writeE2ERepo(t)
	if err := os.WriteFile(filepath.Join(badRoutes, "routes.yaml"), []byte("routes:\n  - name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name    string
		cfg     server.Config
		started bool
		want    string
	}{
		{"invalid config", server.Config{Addr: "127.0.0.1:0"}, false, "repo: required"},
		{"bad address", server.Config{Addr: "127.0.0.1:99999", Repo: repo, Data: data}, false, "99999"},
		{"missing data set", server.Config{Addr: "127.0.0.1:0", Repo: repo, Data: missing}, true, "load data set"},
		{"missing repository", server.Config{Addr: "127.0.0.1:0", Repo: missing, Data: data}, true, "open model repository"},
		{"bad routes", server.Config{Addr: "127.0.0.1:0", Repo: badRoutes, Data: data}, true, "load routes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := false
			err := server.Run(t.Context(), tt.cfg, nil, func(net.Addr) { started = true })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%+v) = %v; want an error containing %q", tt.cfg, err, tt.want)
			}
			if started != tt.started {
				t.Errorf("Run(%+v) called started = %v; want %v", tt.cfg, started, tt.started)
			}
		})
	}
}
