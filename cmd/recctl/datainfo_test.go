package main

import (
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models/features"
)

// TestDatainfo checks each need's verdict on small data sets, and that the
// purchases need agrees with `recctl features` (features.Export fails
// exactly when the need is not met).
func TestDatainfo(t *testing.T) {
	const t0, day = int64(1_700_000_000), int64(86400)
	in := func(u, i string, e dataset.Event, ts int64) dataset.Interaction {
		v := 1.0
		if e == dataset.Rating {
			v = 4
		}
		return dataset.Interaction{UserID: u, ItemID: i, Event: e, Value: v, Timestamp: ts}
	}
	nan := math.NaN()
	catalogue := []dataset.Item{
		{ID: "a", Title: "Red running shoe", Category: "shoes", Price: 50},
		{ID: "b", Title: "Blue sock", Category: "socks", Price: 5},
		{ID: "c", Description: "a plain mug", Price: nan},
	}
	bare := []dataset.Item{{ID: "a", Price: nan}, {ID: "b", Price: nan}, {ID: "c", Price: nan}}
	shop := []dataset.Interaction{
		in("u1", "a", dataset.View, t0),
		in("u1", "b", dataset.View, t0+10*day),
		in("u2", "a", dataset.View, t0+20*day),
		in("u2", "a", dataset.Purchase, t0+30*day),
		in("u1", "c", dataset.View, t0+31*day),
	}
	tests := []struct {
		name string
		d    *dataset.Dataset
		want map[string]string // need → "yes" or "no", a space and a fragment of the detail
	}{
		{
			name: "shop",
			d:    &dataset.Dataset{Interactions: shop, Items: catalogue},
			want: map[string]string{
				needPurchases:  "yes 1 of 1 purchase events fall in the 4 label windows of 7 days",
				needItemText:   "yes 3 of 3 items",
				needCategories: "yes 2 of 3 items have a category",
				needHistories:  "yes 1 of 2 users",
			},
		},
		{
			name: "ratings only",
			d: &dataset.Dataset{Items: catalogue, Interactions: []dataset.Interaction{
				in("u1", "a", dataset.Rating, t0), in("u1", "b", dataset.Rating, t0+day), in("u2", "c", dataset.Rating, t0+2*day),
			}},
			want: map[string]string{
				needPurchases: "no the data set has no purchase events",
				needItemText:  "yes",
				needHistories: "yes",
			},
		},
		{
			name: "purchases before the label windows",
			d: &dataset.Dataset{Items: catalogue, Interactions: []dataset.Interaction{
				in("u1", "a", dataset.View, t0), in("u1", "a", dataset.Purchase, t0+day), in("u2", "b", dataset.View, t0+60*day),
			}},
			want: map[string]string{needPurchases: "no none of its 1 purchase events falls in the 4 label windows"},
		},
		{
			name: "a purchase but no history before any window",
			d: &dataset.Dataset{Items: catalogue, Interactions: []dataset.Interaction{
				in("u1", "a", dataset.View, t0), in("u1", "a", dataset.Purchase, t0+day),
			}},
			want: map[string]string{needPurchases: "no none of its 1 purchase events"},
		},
		{
			name: "a purchase in the one window with history before it",
			d: &dataset.Dataset{Items: catalogue, Interactions: []dataset.Interaction{
				in("u1", "a", dataset.View, t0), in("u1", "a", dataset.Purchase, t0+8*day),
			}},
			want: map[string]string{needPurchases: "yes 1 of 1"},
		},
		{
			name: "catalogue without text",
			d:    &dataset.Dataset{Interactions: shop, Items: bare},
			want: map[string]string{
				needItemText:   "no none of its 3 items has a title, description, category or brand",
				needCategories: "no none of its 3 items has a category",
			},
		},
		{
			name: "no items.csv",
			d:    &dataset.Dataset{Interactions: shop},
			want: map[string]string{needItemText: "no the data set has no catalogue items"},
		},
		{
			name: "one item per user",
			d: &dataset.Dataset{Items: catalogue, Interactions: []dataset.Interaction{
				in("u1", "a", dataset.View, t0), in("u1", "a", dataset.Cart, t0+1), in("u2", "b", dataset.View, t0+2),
			}},
			want: map[string]string{needHistories: "no none of its 2 users touched two different items"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := dataset.Write(dir, tt.d); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, "datainfo", "--data", dir)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 5 || !strings.HasPrefix(lines[0], "data set "+dir+": ") {
				t.Fatalf("datainfo printed %q; want a summary line and 4 needs", out)
			}
			got := map[string]string{}
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				got[f[0]] = strings.Join(f[1:], " ")
			}
			for name, want := range tt.want {
				verdict, detail, _ := strings.Cut(want, " ")
				if g := got[name]; !strings.HasPrefix(g, verdict+" ") || !strings.Contains(g, detail) {
					t.Errorf("%s = %q; want %q", name, g, want)
				}
			}
			d, err := dataset.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, exportErr := features.Export(context.Background(), io.Discard, d, features.ExportOptions{})
			if ok := strings.HasPrefix(got[needPurchases], "yes"); ok != (exportErr == nil) {
				t.Errorf("purchases need %q, but recctl features would give error %v", got[needPurchases], exportErr)
			}
		})
	}
}

func TestDatainfoUsage(t *testing.T) {
	for _, args := range [][]string{
		{"datainfo"},
		{"datainfo", "--data", "x", "--cuts", "0"},
		{"datainfo", "--data", "x", "--window-days", "-1"},
	} {
		if _, err := run(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("recctl %q = %v; want a usage error", args, err)
		}
	}
}
