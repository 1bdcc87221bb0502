package server_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/models/onnx"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/training/trainer"
)

// liveGroups is how the live e2e catalogue clusters: item iNN belongs to
// group (NN-1)/5, and each group's items are viewed together, so item-kNN's
// neighbours of an item are the rest of its group.
const liveGroups = 6

// writeLiveData writes a data set of 30 items (i01..i30, groups of five)
// and eight users per group who each viewed four items of their group.
func writeLiveData(t *testing.T) string {
	t.Helper()
	d := &dataset.Dataset{}
	for n := 1; n <= 5*liveGroups; n++ {
		d.Items = append(d.Items, dataset.Item{
			ID: fmt.Sprintf("i%02d", n), Title: fmt.Sprintf("Item %d", n), Category: fmt.Sprintf("g%d", (n-1)/5), Price: float64(n),
		})
	}
	for g := range liveGroups {
		for u := range 8 {
			for j := range 4 {
				item := 5*g + 1 + (u+j)%5
				d.Interactions = append(d.Interactions, dataset.Interaction{
					UserID: fmt.Sprintf("g%du%d", g, u), ItemID: fmt.Sprintf("i%02d", item), Event: dataset.View, Value: 1,
					Timestamp: int64(1000 + 10*u + j),
				})
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := dataset.Write(dir, d); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeLiveRepo trains itemknn and popularity on data and adds the onnx
// sequence fixture (items i01..i10) as "rnn"; route live blends itemknn and
// rnn, falling back to popularity.
func writeLiveRepo(t *testing.T, data string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	for _, kind := range []string{"itemknn", "popularity"} {
		if _, err := trainer.Run(t.Context(), trainer.Job{Kind: kind, DataDir: data, Out: filepath.Join(repo, kind, "1")}); err != nil {
			t.Fatalf("train %s: %v", kind, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(repo, "rnn"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(onnxVersion(t, "sequence.onnx", onnx.Sequence), filepath.Join(repo, "rnn", "1")); err != nil {
		t.Fatal(err)
	}
	routes := `default_route: live
fallback: popularity
routes:
  - name: live
    sources:
      - {model: itemknn, weight: 1}
      - {model: rnn, weight: 0.1}
`
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

// withState gives the server a Pebble state store in dir.
func withState(dir string) func(*server.Config) {
	return func(c *server.Config) { c.State = dir }
}

func view(user, item string) *pb.Event {
	return &pb.Event{UserId: user, ItemId: item, Event: "view"}
}

// TestEventsEndToEnd is the live-events acceptance test through gRPC: for a
// known user and for a brand-new one, Track views of two items and the very
// next Recommend excludes them, moves towards their item-kNN neighbours,
// and feeds them to the rnn (its debug input ends with them).
func TestEventsEndToEnd(t *testing.T) {
	if lib, err := onnx.FindLibrary(); err != nil || !fileExists(lib) {
		t.Skipf("onnxruntime library not found (run `make ort` or set %s): %q, %v", onnx.LibraryEnv, lib, err)
	}
	data := writeLiveData(t)
	repo := writeLiveRepo(t, data)
	conn := runServer(t, data, repo, withState(filepath.Join(t.TempDir(), "state")))
	rc, ec := pb.NewRecommendServiceClient(conn), pb.NewEventServiceClient(conn)
	ctx := t.Context()

	neighbours := func(items ...string) map[string]bool {
		out := map[string]bool{}
		for _, it := range items {
			resp, err := rc.SimilarItems(ctx, &pb.SimilarItemsRequest{ItemId: it, K: 4, Model: "itemknn"})
			if err != nil {
				t.Fatalf("SimilarItems(%s): %v", it, err)
			}
			for _, s := range resp.GetItems() {
				out[s.GetItemId()] = true
			}
		}
		for _, it := range items {
			delete(out, it)
		}
		return out
	}
	overlap := func(resp *pb.RecommendResponse, set map[string]bool) int {
		n := 0
		for _, it := range resp.GetItems() {
			if set[it.GetItemId()] {
				n++
			}
		}
		return n
	}

	tests := []struct {
		name, user string
		tracked    []string
	}{
		// g3u0 viewed items of group 3 (i16..i20); the tracked items are
		// of group 0, which the rnn's vocabulary (i01..i10) covers.
		{"known user", "g3u0", []string{"i02", "i03"}},
		{"new user", "shopper-new", []string{"i07", "i08"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &pb.RecommendRequest{UserId: tt.user, K: 5, Debug: true}
			before, err := rc.Recommend(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			near := neighbours(tt.tracked...)
			resp, err := ec.Track(ctx, &pb.TrackRequest{Events: []*pb.Event{view(tt.user, tt.tracked[0]), view(tt.user, tt.tracked[1])}})
			if err != nil || resp.GetAccepted() != 2 {
				t.Fatalf("Track = %v, %v; want 2 accepted", resp, err)
			}
			after, err := rc.Recommend(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range after.GetItems() {
				if slices.Contains(tt.tracked, it.GetItemId()) {
					t.Errorf("Recommend after Track returned the tracked item %s", it.GetItemId())
				}
			}
			if after.GetColdStart() {
				t.Errorf("Recommend after Track is cold start; want the user known")
			}
			if b, a := overlap(before, near), overlap(after, near); a <= b || a < 2 {
				t.Errorf("answer holds %d of the tracked items' neighbours %v after Track (%d before); want more, at least 2: before %v, after %v",
					a, keys(near), b, itemIDs(before), itemIDs(after))
			}
			hist := after.GetDebug().GetHistory()
			if len(hist) < 2 || !slices.Equal(hist[len(hist)-2:], tt.tracked) {
				t.Errorf("debug history = %v; want it to end with %v", hist, tt.tracked)
			}
			var rnn []string
			found := false
			for _, in := range after.GetDebug().GetInputs() {
				if in.GetModel() == "rnn" {
					rnn, found = in.GetItems(), true
				}
			}
			if !found || len(rnn) < 2 || !slices.Equal(rnn[len(rnn)-2:], tt.tracked) {
				t.Errorf("rnn input = %v (found %v); want it to end with %v", rnn, found, tt.tracked)
			}
		})
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestEventsBadInput sends invalid batches: each is InvalidArgument naming
// the field and index, and nothing of the batch is applied.
func TestEventsBadInput(t *testing.T) {
	data := writeLiveData(t)
	conn := runServer(t, data, writeE2ERepo(t), withState(filepath.Join(t.TempDir(), "state")))
	ec := pb.NewEventServiceClient(conn)
	ctx := t.Context()
	long := strings.Repeat("x", 257)
	ok := func() *pb.Event { return view("bad-input-user", "i01") }
	with := func(f func(*pb.Event)) *pb.Event { e := ok(); f(e); return e }
	many := make([]*pb.Event, 10001)
	for i := range many {
		many[i] = ok()
	}
	tests := []struct {
		name   string
		events []*pb.Event
		field  string
	}{
		{"empty batch", nil, "events"},
		{"too many", many, "events"},
		{"empty user", []*pb.Event{ok(), with(func(e *pb.Event) { e.UserId = "" })}, "events[1].user_id"},
		{"empty item", []*pb.Event{with(func(e *pb.Event) { e.ItemId = "" })}, "events[0].item_id"},
		{"long item", []*pb.Event{ok(), ok(), with(func(e *pb.Event) { e.ItemId = long })}, "events[2].item_id"},
		{"long user", []*pb.Event{with(func(e *pb.Event) { e.UserId = long })}, "events[0].user_id"},
		{"unknown event", []*pb.Event{with(func(e *pb.Event) { e.Event = "teleport" })}, "events[0].event"},
		{"NaN value", []*pb.Event{with(func(e *pb.Event) { e.Value = math.NaN() })}, "events[0].value"},
		{"infinite value", []*pb.Event{with(func(e *pb.Event) { e.Value = math.Inf(-1) })}, "events[0].value"},
		{"future", []*pb.Event{with(func(e *pb.Event) { e.Timestamp = timestamppb.New(time.Now().Add(48 * time.Hour)) })}, "events[0].timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ec.Track(ctx, &pb.TrackRequest{Events: tt.events})
			checkStatus(t, err, codes.InvalidArgument, tt.field)
		})
	}
	got, err := pb.NewRecommendServiceClient(conn).Recommend(ctx, &pb.RecommendRequest{UserId: "bad-input-user", Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetDebug().GetHistory()) != 0 {
		t.Errorf("history after rejected batches = %v; want nothing applied", got.GetDebug().GetHistory())
	}
	// A stream with a bad event: committed batches stay, the error names
	// the event's position in the stream.
	st, err := ec.TrackStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev := view("stream-user", "i01")
		if i == 2 {
			ev.ItemId = ""
		}
		if err := st.Send(ev); err != nil {
			break
		}
	}
	_, err = st.CloseAndRecv()
	checkStatus(t, err, codes.InvalidArgument, "events[2].item_id")
}

// TestEventsWithoutStateStore: a server with no state store refuses writes
// with FailedPrecondition and keeps serving.
func TestEventsWithoutStateStore(t *testing.T) {
	conn := runServer(t, writeE2EData(t), writeE2ERepo(t))
	_, err := pb.NewEventServiceClient(conn).Track(t.Context(), &pb.TrackRequest{Events: []*pb.Event{view("u1", "i01")}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Track without a state store: %v; want FailedPrecondition", err)
	}
}

// TestCatalogueAndDeleteUser: catalogue changes and DeleteUser through the
// admin-token RPCs change the next answer.
func TestCatalogueAndDeleteUser(t *testing.T) {
	const tok = "s3cret"
	data := writeLiveData(t)
	repo := writeLiveRepo(t, data)
	conn := runServer(t, data, repo, withState(filepath.Join(t.TempDir(), "state")), withToken(tok))
	rc, ec := pb.NewRecommendServiceClient(conn), pb.NewEventServiceClient(conn)
	ctx, adm := t.Context(), bearerCtx(t.Context(), tok)

	if _, err := ec.UpsertItems(ctx, &pb.UpsertItemsRequest{Items: []*pb.Item{{ItemId: "i01"}}}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("UpsertItems without the token: %v; want Unauthenticated", err)
	}
	if _, err := ec.DeleteUser(ctx, &pb.DeleteUserRequest{UserId: "g0u0"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("DeleteUser without the token: %v; want Unauthenticated", err)
	}
	_, err := ec.UpsertItems(adm, &pb.UpsertItemsRequest{Items: []*pb.Item{{ItemId: "i01", Price: proto64(-1)}}})
	checkStatus(t, err, codes.InvalidArgument, "items[0].price")

	req := &pb.RecommendRequest{UserId: "g0u0", K: 3, Model: "popularity"}
	first, err := rc.Recommend(ctx, req)
	if err != nil || len(first.GetItems()) == 0 {
		t.Fatalf("Recommend = %v, %v", first, err)
	}
	top := first.GetItems()[0].GetItemId()
	if _, err := ec.UpsertItems(adm, &pb.UpsertItemsRequest{Items: []*pb.Item{{ItemId: top, Title: "gone", OutOfStock: true}}}); err != nil {
		t.Fatal(err)
	}
	after, err := rc.Recommend(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(itemIDs(after), top) {
		t.Errorf("Recommend after %s went out of stock = %v; want it gone", top, itemIDs(after))
	}

	// DeleteUser: GetUser finds nothing, Recommend treats the user as new.
	if _, err := ec.Track(ctx, &pb.TrackRequest{Events: []*pb.Event{view("g0u0", "i11")}}); err != nil {
		t.Fatal(err)
	}
	u, err := ec.GetUser(adm, &pb.GetUserRequest{UserId: "g0u0"})
	if err != nil || !u.GetKnown() || u.GetTotal() != 5 || u.GetEvents()[0].GetItemId() != "i11" {
		t.Fatalf("GetUser = %v, %v; want 5 events, newest i11 first", u, err)
	}
	del, err := ec.DeleteUser(adm, &pb.DeleteUserRequest{UserId: "g0u0"})
	if err != nil || del.GetEventsDeleted() != 5 {
		t.Fatalf("DeleteUser = %v, %v; want 5 events deleted", del, err)
	}
	u, err = ec.GetUser(adm, &pb.GetUserRequest{UserId: "g0u0"})
	if err != nil || u.GetKnown() || len(u.GetEvents()) != 0 {
		t.Errorf("GetUser after DeleteUser = %v, %v; want unknown", u, err)
	}
	cold, err := rc.Recommend(ctx, &pb.RecommendRequest{UserId: "g0u0", K: 3})
	if err != nil || !cold.GetColdStart() {
		t.Errorf("Recommend after DeleteUser = %v, %v; want cold start", cold, err)
	}
}

func proto64(v float64) *float64 { return &v }

// TestReplicasShareRedis: two servers on one Redis. An event sent to
// replica A changes replica B's next answer within the replication lag
// (measured here over 30 events; the goal is 100 ms, the test allows 2 s
// for a loaded CI machine), and DeleteUser and catalogue changes on A reach
// B too.
func TestReplicasShareRedis(t *testing.T) {
	const tok = "replicas"
	data := writeLiveData(t)
	repo := writeLiveRepo(t, data)
	rs := redistest.Start(t)
	withRedis := func(c *server.Config) { c.StoreURL = rs.URL() }
	connA := runServer(t, data, repo, withRedis, withToken(tok))
	connB := runServer(t, data, repo, withRedis, withToken(tok))
	ea, rb := pb.NewEventServiceClient(connA), pb.NewRecommendServiceClient(connB)
	ctx, adm := t.Context(), bearerCtx(t.Context(), tok)

	historyOnB := func(user string) []string {
		resp, err := rb.Recommend(ctx, &pb.RecommendRequest{UserId: user, K: 3, Debug: true})
		if err != nil {
			t.Fatalf("Recommend on B: %v", err)
		}
		return resp.GetDebug().GetHistory()
	}
	var lags []time.Duration
	for i := range 30 {
		user := fmt.Sprintf("replica-user-%d", i)
		item := fmt.Sprintf("i%02d", 1+i%30)
		if _, err := ea.Track(ctx, &pb.TrackRequest{Events: []*pb.Event{view(user, item)}}); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for !slices.Equal(historyOnB(user), []string{item}) {
			if time.Since(acked) > 2*time.Second {
				t.Fatalf("replica B never saw %s's event on A (history %v)", user, historyOnB(user))
			}
			time.Sleep(time.Millisecond)
		}
		lags = append(lags, time.Since(acked))
	}
	slices.Sort(lags)
	t.Logf("replication lag A→B over %d events: p50 %v, p90 %v, max %v", len(lags), lags[len(lags)/2], lags[len(lags)*9/10], lags[len(lags)-1])

	// DeleteUser on A: B treats the user as new.
	if _, err := ea.DeleteUser(adm, &pb.DeleteUserRequest{UserId: "replica-user-0"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(historyOnB("replica-user-0")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("B still holds replica-user-0's history after DeleteUser on A")
		}
		time.Sleep(time.Millisecond)
	}
	// A catalogue change on A: the item leaves B's answers.
	req := &pb.RecommendRequest{UserId: "g0u0", K: 3, Model: "popularity"}
	first, err := rb.Recommend(ctx, req)
	if err != nil || len(first.GetItems()) == 0 {
		t.Fatalf("Recommend on B = %v, %v", first, err)
	}
	top := first.GetItems()[0].GetItemId()
	if _, err := ea.UpsertItems(adm, &pb.UpsertItemsRequest{Items: []*pb.Item{{ItemId: top, Hidden: true}}}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		resp, err := rb.Recommend(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(itemIDs(resp), top) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B still recommends %s after A hid it: %v", top, itemIDs(resp))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRedisDown: with the shared store stopped, Track fails fast with
// Unavailable and Recommend answers from what the server holds; after Redis
// is back, Track works again and nothing acknowledged was lost.
func TestRedisDown(t *testing.T) {
	data := writeLiveData(t)
	repo := writeLiveRepo(t, data)
	rs := redistest.Start(t)
	conn := runServer(t, data, repo, func(c *server.Config) { c.StoreURL = rs.URL() })
	ec, rc := pb.NewEventServiceClient(conn), pb.NewRecommendServiceClient(conn)
	ctx := t.Context()
	if _, err := ec.Track(ctx, &pb.TrackRequest{Events: []*pb.Event{{EventId: "before", UserId: "down-user", ItemId: "i02", Event: "view"}}}); err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	start := time.Now()
	_, err := ec.Track(ctx, &pb.TrackRequest{Events: []*pb.Event{view("down-user", "i03")}})
	if status.Code(err) != codes.Unavailable || time.Since(start) > 3*time.Second {
		t.Errorf("Track with Redis down = %v after %v; want Unavailable within 3s", err, time.Since(start))
	}
	resp, err := rc.Recommend(ctx, &pb.RecommendRequest{UserId: "down-user", K: 3, Debug: true})
	if err != nil || !slices.Equal(resp.GetDebug().GetHistory(), []string{"i02"}) {
		t.Errorf("Recommend with Redis down = %v, %v; want an answer from the held history [i02]", resp, err)
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := ec.Track(ctx, &pb.TrackRequest{Events: []*pb.Event{{EventId: "after", UserId: "down-user", ItemId: "i04", Event: "view"}}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Track after Redis restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err = rc.Recommend(ctx, &pb.RecommendRequest{UserId: "down-user", K: 3, Debug: true})
	if err != nil || !slices.Equal(resp.GetDebug().GetHistory(), []string{"i02", "i04"}) {
		t.Errorf("Recommend after Redis is back = %v, %v; want history [i02 i04]", resp.GetDebug().GetHistory(), err)
	}
}

// TestImpressionLog: every Recommend and SimilarItems answer carries a
// recommendation_id, and the server's impression log holds one JSON line
// per answer under that id, with the route, the model versions and the
// items in position order.
func TestImpressionLog(t *testing.T) {
	data := writeLiveData(t)
	repo := writeLiveRepo(t, data)
	logPath := filepath.Join(t.TempDir(), "impressions.jsonl")
	addr, stop := startStoppable(t, server.Config{Addr: "127.0.0.1:0", Repo: repo, Data: data, Server: server.DefaultOptions(), ImpressionLog: logPath})
	conn := dial(t, addr)
	waitServing(t, healthpb.NewHealthClient(conn), "")
	rc := pb.NewRecommendServiceClient(conn)
	ctx := t.Context()
	rec, err := rc.Recommend(ctx, &pb.RecommendRequest{UserId: "g1u2", K: 4, SessionId: "visit-1"})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := rc.SimilarItems(ctx, &pb.SimilarItemsRequest{ItemId: "i07", K: 3, Model: "itemknn"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.GetRecommendationId() == "" || sim.GetRecommendationId() == "" || rec.GetRecommendationId() == sim.GetRecommendationId() {
		t.Fatalf("recommendation ids %q and %q; want two distinct ids", rec.GetRecommendationId(), sim.GetRecommendationId())
	}
	conn.Close()
	stop()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("impression log has %d lines; want 2:\n%s", len(lines), b)
	}
	var imps []router.Impression
	for _, line := range lines {
		var imp router.Impression
		if err := json.Unmarshal([]byte(line), &imp); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		imps = append(imps, imp)
	}
	r := imps[0]
	if r.ID != rec.GetRecommendationId() || r.Kind != "recommend" || r.UserID != "g1u2" || r.SessionID != "visit-1" || r.Route != "live" {
		t.Errorf("recommend impression = %+v; want id %s, user g1u2, session visit-1, route live", r, rec.GetRecommendationId())
	}
	if len(r.Items) != len(rec.GetItems()) {
		t.Fatalf("impression items %v; want the answer's %v", r.Items, itemIDs(rec))
	}
	for i, it := range r.Items {
		if it.ItemID != rec.GetItems()[i].GetItemId() || it.Position != i+1 || !slices.Equal(it.Sources, rec.GetItems()[i].GetSources()) {
			t.Errorf("impression item %d = %+v; want %s at position %d with its sources", i, it, rec.GetItems()[i].GetItemId(), i+1)
		}
	}
	if len(r.Models) != len(rec.GetModelVersions()) {
		t.Errorf("impression models %v; want %v", r.Models, rec.GetModelVersions())
	}
	s := imps[1]
	if s.ID != sim.GetRecommendationId() || s.Kind != "similar" || s.Item != "i07" || len(s.Items) != len(sim.GetItems()) ||
		len(s.Models) != 1 || s.Models[0].Name != "itemknn" {
		t.Errorf("similar impression = %+v; want id %s, item i07, model itemknn", s, sim.GetRecommendationId())
	}
}

// TestTrackStreamQuiet: events of a stream that stays open without filling
// a batch are committed and visible within the flush bound, not only when
// the stream closes.
func TestTrackStreamQuiet(t *testing.T) {
	data := writeLiveData(t)
	conn := runServer(t, data, writeE2ERepo(t), withState(filepath.Join(t.TempDir(), "state")))
	ec, rc := pb.NewEventServiceClient(conn), pb.NewRecommendServiceClient(conn)
	st, err := ec.TrackStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range []string{"i04", "i05"} {
		if err := st.Send(view("quiet-user", item)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := rc.Recommend(t.Context(), &pb.RecommendRequest{UserId: "quiet-user", K: 2, Debug: true})
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(resp.GetDebug().GetHistory(), []string{"i04", "i05"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events of an open, quiet stream not visible after 5s: history %v", resp.GetDebug().GetHistory())
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := st.CloseAndRecv()
	if err != nil || resp.GetAccepted() != 2 {
		t.Errorf("CloseAndRecv = %v, %v; want 2 accepted", resp, err)
	}
}
