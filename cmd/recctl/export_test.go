package main

import (
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
	"github.com/recserve/recserve/training/trainer"
)

// TestExport writes a Pebble state store (seeded, live events of a custom
// and a negative type, a deleted user) and checks what `recctl export`
// writes: every live user's events, custom types as weighted ratings, no
// negative events, and nothing of the deleted user.
func TestExport(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	b, err := pebblestore.Open(state, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed := &dataset.Dataset{
		Items: []dataset.Item{{ID: "a", Title: "A", Price: 1}, {ID: "b", Title: "B", Price: 2}},
		Interactions: []dataset.Interaction{
			{UserID: "keep", ItemID: "a", Event: dataset.View, Value: 1, Timestamp: 100},
			{UserID: "forget", ItemID: "a", Event: dataset.Purchase, Value: 1, Timestamp: 101},
		},
	}
	if err := store.Seed(t.Context(), b, seed); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(200, 0)
	if _, err := b.Append(t.Context(), []store.Event{
		{ID: "1", UserID: "keep", ItemID: "b", Type: "wishlist", Time: now},
		{ID: "2", UserID: "keep", ItemID: "a", Type: "dislike", Time: now},
		{ID: "3", UserID: "forget", ItemID: "b", Type: "view", Value: 1, Time: now},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.DeleteUser(t.Context(), "forget"); err != nil || n != 2 {
		t.Fatalf("DeleteUser = %d, %v; want 2", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export")
	stdout, err := run(t, "export", "--state", state, "--out", out, "--event-types", "wishlist=2")
	if err != nil {
		t.Fatalf("recctl export: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "exported 1 users, 2 items, 2 interactions") {
		t.Errorf("export output %q; want 1 user, 2 items, 2 interactions", stdout)
	}
	d, err := dataset.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range d.Interactions {
		got = append(got, in.UserID+"/"+in.ItemID+"/"+in.Event.String()+"/"+strconv.FormatFloat(in.Value, 'g', -1, 64))
	}
	if want := []string{"keep/a/view/1", "keep/b/rating/2"}; !slices.Equal(got, want) {
		t.Errorf("exported interactions = %v; want %v", got, want)
	}
	if _, err := run(t, "export", "--state", state, "--store", "redis://localhost:1/0", "--out", out); err == nil {
		t.Errorf("export with --state and --store: want a usage error")
	}
}

// TestExportFromServer exports the Pebble store of a running server through
// EventService/Export (the server keeps the directory open): tracked
// events are there, a deleted user is not, and the call needs the token.
func TestExportFromServer(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	seed := &dataset.Dataset{
		Items:        []dataset.Item{{ID: "a", Title: "A", Price: 1}, {ID: "b", Title: "B", Price: math.NaN()}},
		Interactions: []dataset.Interaction{{UserID: "keep", ItemID: "a", Event: dataset.View, Value: 1, Timestamp: 100}},
	}
	if err := dataset.Write(data, seed); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	if _, err := trainer.Run(t.Context(), trainer.Job{Kind: "popularity", DataDir: data, Out: filepath.Join(repo, "popularity", "1")}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, server.Config{Repo: repo, Data: data, State: filepath.Join(dir, "state"), Server: server.Options{AdminToken: testToken}})
	if out, err := waitModels(t, "--addr", addr); err != nil {
		t.Fatalf("server never loaded: %v\n%s", err, out)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ec := pb.NewEventServiceClient(conn)
	if _, err := ec.Track(t.Context(), &pb.TrackRequest{Events: []*pb.Event{
		{UserId: "keep", ItemId: "b", Event: "purchase"},
		{UserId: "forget", ItemId: "a", Event: "view"},
	}}); err != nil {
		t.Fatal(err)
	}
	admin := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+testToken)
	if _, err := ec.DeleteUser(admin, &pb.DeleteUserRequest{UserId: "forget"}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "export")
	t.Setenv(adminTokenEnv, "")
	if _, err := run(t, "export", "--addr", addr, "--out", out); err == nil {
		t.Errorf("export from a server without the token: want an error")
	}
	t.Setenv(adminTokenEnv, testToken)
	stdout, err := run(t, "export", "--addr", addr, "--out", out)
	if err != nil {
		t.Fatalf("recctl export --addr: %v\n%s", err, stdout)
	}
	d, err := dataset.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range d.Interactions {
		got = append(got, in.UserID+"/"+in.ItemID+"/"+in.Event.String())
	}
	if want := []string{"keep/a/view", "keep/b/purchase"}; !slices.Equal(got, want) {
		t.Errorf("exported interactions = %v; want %v", got, want)
	}
	if len(d.Items) != 2 || !math.IsNaN(d.Items[1].Price) {
		t.Errorf("exported items = %+v; want a and b, b without a price", d.Items)
	}
}
