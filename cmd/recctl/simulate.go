package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/simulate"
)

// simulateRetry retries Recommend and Track when the server is briefly
// unavailable. Retrying Track is safe because every simulated event has an
// id the server deduplicates.
const simulateRetry = `{"methodConfig": [{
  "name": [{"service": "recserve.v1.RecommendService", "method": "Recommend"},
           {"service": "recserve.v1.EventService", "method": "Track"}],
  "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`

// runSimulate plays the demo generator's shoppers against a running server:
// each asks for recommendations, clicks and buys with the probabilities of
// its latent tastes, and sends the events back with the answer's
// recommendation id. It prints, per experiment arm, the ground truth (what
// an experiment report should find) beside the realised counts.
func runSimulate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "simulate")
	var cf clientFlags
	cf.register(fs)
	data := fs.String("data", envOr("RECSERVE_DATA", "var/demo/data"), "the data set the server was loaded with: its users are played, its items.csv gives prices (env RECSERVE_DATA)")
	var gen datagen.Config
	fs.IntVar(&gen.Users, "gen-users", 5000, "datagen --users the data set was generated with (the ground truth is rebuilt from these three)")
	fs.IntVar(&gen.Items, "gen-items", 2000, "datagen --items the data set was generated with")
	fs.Int64Var(&gen.Seed, "gen-seed", 1, "datagen --seed the data set was generated with")
	users := fs.Int("users", 2000, "number of users to simulate: the first N of the data set")
	requests := fs.Int("requests", simulate.DefaultRequests, "Recommend calls per user (the events of one are tracked before the next)")
	k := fs.Int("k", simulate.DefaultK, "items per recommendation, 1..1000")
	concurrency := fs.Int("concurrency", 8, "users simulated at once")
	route := fs.String("route", "", "ask for this route instead of rule matching")
	var kv repeated
	fs.Var(&kv, "context", "request context key=value for routing rules (repeatable)")
	noRecID := fs.Bool("no-recommendation-id", false, "send events without the answer's recommendation_id, to test the server's window attribution")
	simSeed := fs.Int64("sim-seed", 0, "seed of the shoppers' clicks and purchases (0: a fresh random seed, printed). A seed repeats a run exactly, event ids\n"+
		"included, against the server state it first met; against a server that has its events it biases the realised counts")
	maxAttraction := fs.Float64("max-attraction", simulate.DefaultMaxAttraction, "click probability of a perfectly fitting item at position 1, in (0, 1]")
	batch := fs.Int("batch", simulate.DefaultBatchSize, fmt.Sprintf("events per Track call, 1..%d", store.MaxBatch))
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: simulate takes no arguments, got %q", errUsage, fs.Args())
	}
	reqCtx, err := parseContext(kv)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		flag string
		bad  bool
		want string
	}{
		{"users", *users < 1, "at least 1"},
		{"requests", *requests < 1, "at least 1"},
		{"k", *k < 1 || *k > 1000, "1..1000"},
		{"concurrency", *concurrency < 1, "at least 1"},
		{"batch", *batch < 1 || *batch > store.MaxBatch, fmt.Sprintf("1..%d", store.MaxBatch)},
		{"max-attraction", !(*maxAttraction > 0 && *maxAttraction <= 1), "in (0, 1]"},
		{"timeout", cf.timeout <= 0, "positive"},
	} {
		if c.bad {
			return fmt.Errorf("%w: simulate: --%s = %s; want %s", errUsage, c.flag, fs.Lookup(c.flag).Value, c.want)
		}
	}

	shoppers, err := datagen.NewShoppers(gen)
	if err != nil {
		return fmt.Errorf("%w: simulate: --gen-users/--gen-items/--gen-seed: %v", errUsage, err)
	}
	ds, err := readCatalogue(*data)
	if err != nil {
		return fmt.Errorf("simulate: --data: %w", err)
	}
	if err := shoppers.Check(ds); err != nil {
		return fmt.Errorf("%w: simulate: --data %s is not the data set of --gen-users %d --gen-items %d --gen-seed %d (pass the datagen flags it was generated with): %v",
			errUsage, *data, gen.Users, gen.Items, gen.Seed, err)
	}
	if *users > gen.Users {
		return fmt.Errorf("%w: simulate: --users = %d; the data set has %d", errUsage, *users, gen.Users)
	}
	ids := make([]string, *users)
	for i := range ids {
		ids[i] = shoppers.UserID(i)
	}
	prices := make(map[string]float64, len(ds.Items))
	for _, it := range ds.Items {
		prices[it.ID] = it.Price
	}

	conn, _, done, err := cf.connect(ctx, grpc.WithDefaultServiceConfig(simulateRetry))
	if err != nil {
		return err
	}
	defer done()
	if err := checkServing(ctx, conn, cf.addr, cf.timeout); err != nil {
		return err
	}
	if *simSeed == 0 {
		// A fresh seed per run: the same draws replayed against a server
		// that learnt from them are biased (see training/simulate).
		*simSeed = 1 + rand.Int64N(1_000_000_000)
	}
	srv := &grpcSimServer{
		rec: pb.NewRecommendServiceClient(conn), ev: pb.NewEventServiceClient(conn),
		route: *route, context: reqCtx, timeout: cf.timeout,
	}
	start := time.Now()
	res, err := simulate.Run(ctx, srv, simulate.Datagen(shoppers), simulate.Config{
		Users: ids, Requests: *requests, K: *k, Concurrency: *concurrency, Seed: *simSeed,
		WindowAttribution: *noRecID, MaxAttraction: *maxAttraction, Prices: prices, BatchSize: *batch,
	})
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			return fmt.Errorf("server at %s stopped answering: %w", cf.addr, err)
		}
		return err
	}
	stored := srv.duplicates.Load()
	if cf.json {
		b, err := json.MarshalIndent(struct {
			*simulate.Result
			// AlreadyStored counts events the server already held.
			AlreadyStored int64 `json:"already_stored"`
			SimSeed       int64 `json:"sim_seed"`
		}{res, stored, *simSeed}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.stdout, string(b))
		return err
	}
	fmt.Fprintf(e.stdout, "simulated %d users × %d requests (k %d, --sim-seed %d) against %s in %s: %d answers, %d events in %d Track calls (%d already stored)\n",
		res.Users, *requests, *k, *simSeed, cf.addr, time.Since(start).Round(time.Millisecond), res.Requests, res.Events, res.Batches, stored)
	if err := printSimulation(e, res); err != nil {
		return err
	}
	if stored > 0 {
		fmt.Fprintf(e.stdout, "\nnote: the server already held %d of these events: --sim-seed %d was played against it before, and a rerun\n"+
			"  against a server that has a seed's events is biased (training/simulate); leave --sim-seed unset for a fresh seed\n", stored, *simSeed)
	}
	return nil
}

// parseContext turns repeated --context key=value flags into a map.
func parseContext(kv []string) (map[string]string, error) {
	if len(kv) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kv))
	for _, p := range kv {
		key, val, ok := strings.Cut(p, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("%w: simulate: --context %q; want key=value", errUsage, p)
		}
		m[key] = val
	}
	return m, nil
}

// readCatalogue reads the items and users of a data set (not its
// interactions, which the simulation does not need). A data set without
// users.csv is read with no users.
func readCatalogue(dir string) (*dataset.Dataset, error) {
	read := func(name string, fn func(f *os.File) error) error {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		return fn(f)
	}
	var d dataset.Dataset
	err := read(dataset.ItemsFile, func(f *os.File) (err error) {
		d.Items, err = dataset.ReadItems(f, dataset.ItemsFile)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = read(dataset.UsersFile, func(f *os.File) (err error) {
		d.Users, err = dataset.ReadUsers(f, dataset.UsersFile)
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return &d, nil
}

// checkServing asks the server's health service once, so that a server that
// is down or still loading is reported as such rather than as the first
// failed Recommend.
func checkServing(ctx context.Context, conn *grpc.ClientConn, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("cannot reach the server at %s (is recserve running? --addr): %w", addr, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("server at %s is %s; try again when it serves", addr, s)
	}
	return nil
}

// grpcSimServer is simulate.Server over the gRPC API; every call gets its
// own deadline.
type grpcSimServer struct {
	rec        pb.RecommendServiceClient
	ev         pb.EventServiceClient
	route      string
	context    map[string]string
	timeout    time.Duration
	duplicates atomic.Int64 // events the server already held
}

var _ simulate.Server = (*grpcSimServer)(nil)

func (g *grpcSimServer) Recommend(ctx context.Context, userID string, k int) (simulate.Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	resp, err := g.rec.Recommend(ctx, &pb.RecommendRequest{UserId: userID, K: int32(k), Route: g.route, Context: g.context})
	if err != nil {
		return simulate.Answer{}, err
	}
	items := make([]string, len(resp.GetItems()))
	for i, it := range resp.GetItems() {
		items[i] = it.GetItemId()
	}
	return simulate.Answer{RecommendationID: resp.GetRecommendationId(), Route: resp.GetRoute(), Arm: resp.GetArm(), Items: items}, nil
}

func (g *grpcSimServer) Track(ctx context.Context, events []store.Event) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	pbs := make([]*pb.Event, len(events))
	for i, e := range events {
		pbs[i] = &pb.Event{
			EventId: e.ID, UserId: e.UserID, ItemId: e.ItemID, Event: e.Type, Value: e.Value,
			SessionId: e.SessionID, RecommendationId: e.RecommendationID, Context: e.Context,
		}
		if !e.Time.IsZero() { // zero: the server's time
			pbs[i].Timestamp = timestamppb.New(e.Time)
		}
	}
	resp, err := g.ev.Track(ctx, &pb.TrackRequest{Events: pbs})
	if err != nil {
		return err
	}
	g.duplicates.Add(resp.GetDuplicates())
	return nil
}

// printSimulation prints the per-arm table and, with several arms, the
// ground-truth CTR lift of each over the control.
func printSimulation(e *env, res *simulate.Result) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "arm\troutes\tusers\tanswers\tCTR truth\t± se\trealised\tconversion truth\t± se\trealised\trevenue/user truth\t± se\trealised\tclicks\tpurchases")
	for _, a := range res.Arms {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.2f\t%.2f\t%.2f\t%d\t%d\n",
			dash(a.Name), dash(strings.Join(a.Routes, ",")), a.Users, a.Impressions,
			a.CTR, a.CTRStdErr, a.RealisedCTR, a.Conversion, a.ConversionStdErr, a.RealisedConversion,
			a.RevenuePerUser, a.RevenuePerUserStdErr, a.RealisedRevenuePerUser, a.Clicks, a.Purchases)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Arms) > 1 {
		control := controlArm(res.Arms)
		fmt.Fprintf(e.stdout, "\nground-truth CTR lift over %s:\n", dash(control))
		for _, a := range res.Arms {
			if a.Name == control {
				continue
			}
			lift, err := res.Lift(a.Name, control)
			if err != nil {
				fmt.Fprintf(e.stdout, "  %s: %v\n", dash(a.Name), err)
				continue
			}
			fmt.Fprintf(e.stdout, "  %s: %+.1f%%\n", dash(a.Name), 100*lift)
		}
	}
	if res.UnknownItems > 0 {
		fmt.Fprintf(e.stdout, "\nnote: %d shown items are not in the ground truth (never clicked): the server's catalogue is not the data set's\n", res.UnknownItems)
	}
	if res.Duplicates > 0 {
		fmt.Fprintf(e.stdout, "note: answers repeated %d items (each counted once)\n", res.Duplicates)
	}
	return nil
}

// controlArm picks the arm lifts are computed against: the one named
// "control" (or "EXPERIMENT/control"), else the first.
func controlArm(arms []simulate.Arm) string {
	for _, a := range arms {
		if a.Name == "control" || strings.HasSuffix(a.Name, "/control") {
			return a.Name
		}
	}
	return arms[0].Name
}
