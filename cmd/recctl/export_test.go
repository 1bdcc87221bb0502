package main

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
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
	if _, err := run(t, "export", "--out", out); err == nil {
		t.Errorf("export without --state or --store: want a usage error")
	}
}
