package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
	"github.com/recserve/recserve/serving/router"
)

// fakeRouter is a server.Router whose methods run the given functions.
type fakeRouter struct {
	recommend func(ctx context.Context, req router.Request) (router.Response, error)
	score     func(ctx context.Context, req router.ScoreRequest) (router.ScoreResponse, error)
}

func (f *fakeRouter) Recommend(ctx context.Context, req router.Request) (router.Response, error) {
	return f.recommend(ctx, req)
}

func (f *fakeRouter) Score(ctx context.Context, req router.ScoreRequest) (router.ScoreResponse, error) {
	return f.score(ctx, req)
}

func (f *fakeRouter) SimilarItems(context.Context, router.SimilarRequest) (router.SimilarResponse, error) {
	return router.SimilarResponse{}, errors.New("fakeRouter: SimilarItems not used in these tests")
}

func (f *fakeRouter) TargetAudience(context.Context, router.AudienceRequest) (router.AudienceResponse, error) {
	return router.AudienceResponse{}, errors.New("fakeRouter: TargetAudience not used in these tests")
}

// emptyRepository is a server.ModelRepository with no models that refuses every change.
type emptyRepository struct{}

var errEmptyRepository = errors.New("emptyRepository: no models")

func (emptyRepository) List() ([]repository.Info, error) { return nil, nil }
func (emptyRepository) Info(name string) (repository.Info, error) {
	return repository.Info{}, errEmptyRepository
}
func (emptyRepository) NewUpload(name, version string) (*repository.Upload, error) {
	return nil, errEmptyRepository
}
func (emptyRepository) Commit(context.Context, *repository.Upload, repository.DeployOptions) (repository.Info, error) {
	return repository.Info{}, errEmptyRepository
}
func (emptyRepository) Activate(context.Context, string, string, float64) (repository.Info, error) {
	return repository.Info{}, errEmptyRepository
}
func (emptyRepository) Rollback(context.Context, string) (repository.Info, error) {
	return repository.Info{}, errEmptyRepository
}
func (emptyRepository) Unload(context.Context, string) (repository.Info, error) {
	return repository.Info{}, errEmptyRepository
}

// recorder is a slog.Handler keeping every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// find returns the attributes of every record with message msg.
func (r *recorder) find(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.records {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]string{"level": rec.Level.String()}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// testServer is a server.Server serving on a loopback port.
type testServer struct {
	srv    *server.Server
	addr   string
	cancel context.CancelFunc
	served chan struct{} // closed when Serve returns
	err    error         // Serve's result, set before served is closed
}

// wait waits for Serve to return and reports its result.
func (ts *testServer) wait() error {
	<-ts.served
	return ts.err
}

// start serves New(opts, r, cat) on 127.0.0.1:0, with health SERVING, until
// cancel or the end of the test.
func start(t *testing.T, opts server.Options, r server.Router, cat server.ModelRepository) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(opts, r, cat, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServing(true)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, addr: lis.Addr().String(), cancel: cancel, served: make(chan struct{})}
	go func() {
		ts.err = srv.Serve(ctx, lis)
		close(ts.served)
	}()
	t.Cleanup(func() {
		cancel()
		if err := ts.wait(); err != nil {
			t.Errorf("Serve() = %v; want nil after shutdown", err)
		}
	})
	return ts
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s) = %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func okScore(context.Context, router.ScoreRequest) (router.ScoreResponse, error) {
	return router.ScoreResponse{Scores: []float64{0.5}, Model: router.ModelVersion{Name: "m", Version: "1"}}, nil
}

func TestRecoverPanic(t *testing.T) {
	rec := &recorder{}
	fr := &fakeRouter{
		recommend: func(_ context.Context, req router.Request) (router.Response, error) {
			if req.UserID == "panic" {
				var items []router.Item
				_ = items[len(req.UserID)] // a real runtime panic: index out of range
			}
			return router.Response{Items: []router.Item{{ItemID: "x", Score: 1}}, Route: "r"}, nil
		},
		score: okScore,
	}
	ts := start(t, server.Options{Logger: slog.New(rec)}, fr, emptyRepository{})
	conn := dial(t, ts.addr)
	c := pb.NewRecommendServiceClient(conn)
	ctx := t.Context()

	for i := range 2 {
		resp, err := c.Recommend(ctx, &pb.RecommendRequest{UserId: "panic"})
		if status.Code(err) != codes.Internal {
			t.Fatalf("call %d: Recommend(panicking) = %v, %v; want code Internal", i, resp, err)
		}
		if msg := status.Convert(err).Message(); msg != "internal error" {
			t.Errorf("call %d: Recommend(panicking) message = %q; want %q (no panic text leaked)", i, msg, "internal error")
		}
	}
	// The server still serves, on the same connection.
	resp, err := c.Recommend(ctx, &pb.RecommendRequest{UserId: "calm"})
	if err != nil || len(resp.GetItems()) != 1 || resp.GetItems()[0].GetItemId() != "x" {
		t.Errorf("Recommend after panics = %v, %v; want item x", resp, err)
	}
	if sr, err := c.Score(ctx, &pb.ScoreRequest{UserId: "u", ItemIds: []string{"x"}}); err != nil || len(sr.GetScores()) != 1 {
		t.Errorf("Score after panics = %v, %v; want one score", sr, err)
	}
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after panics = %v, %v; want SERVING", hc, err)
	}

	panics := rec.find("panic in handler")
	if len(panics) != 2 {
		t.Fatalf("logged %d panics; want 2", len(panics))
	}
	if p := panics[0]; p["method"] != "/recserve.v1.RecommendService/Recommend" || p["stack"] == "" || p["panic"] == "" {
		t.Errorf("panic log = %v; want method, panic and stack", p)
	}
	// The logging interceptor sees the recovered Internal status.
	var internal int
	for _, r := range rec.find("rpc") {
		if r["code"] == "Internal" {
			internal++
			if r["level"] != "ERROR" {
				t.Errorf("rpc log for Internal at level %s; want ERROR", r["level"])
			}
		}
	}
	if internal != 2 {
		t.Errorf("logged %d Internal RPCs; want 2", internal)
	}
}

func TestLogsEachRPCOnce(t *testing.T) {
	rec := &recorder{}
	fr := &fakeRouter{
		recommend: func(context.Context, router.Request) (router.Response, error) {
			return router.Response{}, &models.FieldError{Field: "k", Err: errors.New("bad")}
		},
		score: okScore,
	}
	ts := start(t, server.Options{Logger: slog.New(rec)}, fr, emptyRepository{})
	c := pb.NewRecommendServiceClient(dial(t, ts.addr))
	if _, err := c.Recommend(t.Context(), &pb.RecommendRequest{UserId: "secret-user"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Recommend = %v; want InvalidArgument", err)
	}
	if _, err := c.Score(t.Context(), &pb.ScoreRequest{UserId: "secret-user", ItemIds: []string{"x"}}); err != nil {
		t.Fatalf("Score = %v", err)
	}
	rpcs := rec.find("rpc")
	if len(rpcs) != 2 {
		t.Fatalf("logged %d rpc lines; want 2: %v", len(rpcs), rpcs)
	}
	want := []map[string]string{
		{"method": "/recserve.v1.RecommendService/Recommend", "code": "InvalidArgument", "level": "INFO"},
		{"method": "/recserve.v1.RecommendService/Score", "code": "OK", "level": "DEBUG"},
	}
	for i, w := range want {
		for k, v := range w {
			if rpcs[i][k] != v {
				t.Errorf("rpc log %d %s = %q; want %q", i, k, rpcs[i][k], v)
			}
		}
		for k, v := range rpcs[i] {
			if v == "secret-user" {
				t.Errorf("rpc log %d attribute %s carries the payload's user id", i, k)
			}
		}
	}
}

func TestHealthNotServingUntilSet(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{}, &fakeRouter{}, emptyRepository{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v; want nil", err)
		}
	}()
	hc := healthpb.NewHealthClient(dial(t, lis.Addr().String()))
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q) = %v", service, err)
		}
		return resp.GetStatus()
	}
	services := []string{"", "recserve.v1.RecommendService", "recserve.v1.ModelService"}
	for _, s := range services {
		if got := check(s); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("before SetServing Check(%q) = %v; want NOT_SERVING", s, got)
		}
	}
	srv.SetServing(true)
	for _, s := range services {
		if got := check(s); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("after SetServing(true) Check(%q) = %v; want SERVING", s, got)
		}
	}
	srv.SetServing(false)
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after SetServing(false) Check(\"\") = %v; want NOT_SERVING", got)
	}
	if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(nope) = %v; want NotFound", err)
	}
}

func TestReflectionOff(t *testing.T) {
	ts := start(t, server.Options{Reflection: false}, &fakeRouter{}, emptyRepository{})
	if _, err := listServices(t, dial(t, ts.addr)); status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection with Reflection=false: err = %v; want Unimplemented", err)
	}
}

// blocker is a Recommend that signals entered, then waits for release or
// for its context to end.
type blocker struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *blocker) recommend(ctx context.Context, _ router.Request) (router.Response, error) {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
		return router.Response{Items: []router.Item{{ItemID: "late", Score: 1}}, Route: "slow"}, nil
	case <-ctx.Done():
		return router.Response{}, ctx.Err()
	}
}

type callResult struct {
	resp *pb.RecommendResponse
	err  error
}

func TestGracefulShutdownDrainsInFlightCall(t *testing.T) {
	b := newBlocker()
	ts := start(t, server.Options{ShutdownTimeout: time.Minute}, &fakeRouter{recommend: b.recommend, score: okScore}, emptyRepository{})
	conn := dial(t, ts.addr)
	c := pb.NewRecommendServiceClient(conn)

	res := make(chan callResult, 1)
	go func() {
		resp, err := c.Recommend(context.Background(), &pb.RecommendRequest{UserId: "u"})
		res <- callResult{resp, err}
	}()
	<-b.entered
	// The channel's state may trail the transport that carries the call.
	waitCtx, cancelWait := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancelWait()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(waitCtx, s) {
			t.Fatalf("connection state with a call in flight = %v; want READY", s)
		}
	}

	ts.cancel() // begin shutdown

	// The server's GOAWAY moves the client connection out of READY: the
	// drain has begun, and the listener is closed.
	if !conn.WaitForStateChange(waitCtx, connectivity.Ready) {
		t.Fatalf("connection still READY after shutdown began")
	}
	select {
	case <-ts.served:
		t.Fatalf("Serve() returned %v while a call was in flight; want it to wait", ts.err)
	case r := <-res:
		t.Fatalf("in-flight call returned %v, %v before release", r.resp, r.err)
	default:
	}
	// New calls on a new connection are refused while draining.
	late := healthpb.NewHealthClient(dial(t, ts.addr))
	if _, err := late.Check(waitCtx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("new call during drain = %v; want Unavailable", err)
	}

	close(b.release)
	r := <-res
	if r.err != nil {
		t.Fatalf("in-flight call during graceful shutdown = %v; want success", r.err)
	}
	if got := r.resp.GetItems(); len(got) != 1 || got[0].GetItemId() != "late" {
		t.Errorf("in-flight call items = %v; want [late]", got)
	}
	if err := ts.wait(); err != nil {
		t.Errorf("Serve() = %v; want nil", err)
	}
}

func TestShutdownTimeoutCutsCalls(t *testing.T) {
	b := newBlocker() // never released
	ts := start(t, server.Options{ShutdownTimeout: 50 * time.Millisecond}, &fakeRouter{recommend: b.recommend, score: okScore}, emptyRepository{})
	c := pb.NewRecommendServiceClient(dial(t, ts.addr))
	res := make(chan callResult, 1)
	go func() {
		resp, err := c.Recommend(context.Background(), &pb.RecommendRequest{UserId: "u"})
		res <- callResult{resp, err}
	}()
	<-b.entered
	ts.cancel()
	if err := ts.wait(); err != nil {
		t.Errorf("Serve() after drain timeout = %v; want nil", err)
	}
	r := <-res
	if code := status.Code(r.err); code != codes.Unavailable {
		t.Errorf("call cut by drain timeout = %v, %v; want Unavailable", r.resp, r.err)
	}
}

func TestServerSideDeadline(t *testing.T) {
	b := newBlocker() // returns ctx.Err() when the deadline passes
	ts := start(t, server.Options{}, &fakeRouter{recommend: b.recommend, score: okScore}, emptyRepository{})
	c := pb.NewRecommendServiceClient(dial(t, ts.addr))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Recommend(ctx, &pb.RecommendRequest{UserId: "u"}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Recommend past its deadline = %v; want DeadlineExceeded", err)
	}
}

func TestServeReturnsListenerError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	srv, err := server.New(server.Options{}, &fakeRouter{}, emptyRepository{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(t.Context(), lis); err == nil {
		t.Errorf("Serve(closed listener) = nil; want an error")
	}
}

func TestShutdownReportsNotServing(t *testing.T) {
	ts := start(t, server.Options{}, &fakeRouter{}, emptyRepository{})
	watchCtx, stopWatch := context.WithCancel(t.Context())
	defer stopWatch()
	w, err := healthpb.NewHealthClient(dial(t, ts.addr)).Watch(watchCtx, &healthpb.HealthCheckRequest{Service: "recserve.v1.RecommendService"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := w.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first update = %v, %v; want SERVING", resp.GetStatus(), err)
	}
	ts.cancel()
	if resp, err := w.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch update after shutdown began = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	stopWatch() // the open stream is the last in-flight call; the drain can finish
	if err := ts.wait(); err != nil {
		t.Errorf("Serve() = %v; want nil", err)
	}
}

// TestNewRegistersRPCMetrics: New registers the RPC metrics on its
// Registerer, and refuses a registry that holds them already (a second
// server would mix its numbers with the first's).
func TestNewRegistersRPCMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, err := server.New(server.Options{Registerer: reg}, &fakeRouter{}, emptyRepository{}, nil)
	if err != nil {
		t.Fatalf("New(fresh registry) = %v; want nil", err)
	}
	// Serving a closed listener fails at once and stops the stream workers.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	_ = srv.Serve(t.Context(), lis)
	var are prometheus.AlreadyRegisteredError
	if _, err := server.New(server.Options{Registerer: reg}, &fakeRouter{}, emptyRepository{}, nil); !errors.As(err, &are) {
		t.Errorf("New(registry in use) = %v; want an AlreadyRegisteredError", err)
	}
}
