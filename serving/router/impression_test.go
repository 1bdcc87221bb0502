package router_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

func TestImpressionStored(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		imp  router.Impression
		want store.Impression
	}{
		{
			name: "recommend in an experiment, with a canary",
			imp: router.Impression{
				ID: "r1", Time: at, Kind: "recommend", UserID: "u1", SessionID: "s1", Route: "main", Arm: "exp/b",
				Models: []router.ModelVersion{{Name: "itemknn", Version: "3"}, {Name: "rnn", Version: "7", Canary: true}},
				Items: []router.ImpressedItem{
					{ItemID: "i9", Position: 1, Score: 0.9, Sources: []string{"itemknn"}},
					{ItemID: "i4", Position: 2, Score: 0.5, Sources: []string{"rnn"}},
				},
			},
			want: store.Impression{
				ID: "r1", Time: at, Kind: "recommend", UserID: "u1", SessionID: "s1", Route: "main", Arm: "exp/b",
				Models: []store.ModelVersion{{Name: "itemknn", Version: "3"}, {Name: "rnn", Version: "7", Canary: true}},
				Items:  []string{"i9", "i4"},
			},
		},
		{
			name: "similar, anonymous, no items",
			imp:  router.Impression{ID: "r2", Time: at, Kind: "similar", Item: "i1", Models: []router.ModelVersion{{Name: "itemknn", Version: "3"}}},
			want: store.Impression{
				ID: "r2", Time: at, Kind: "similar",
				Models: []store.ModelVersion{{Name: "itemknn", Version: "3"}}, Items: []string{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.imp.Stored(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Stored() = %+v; want %+v", got, tt.want)
			}
		})
	}
}
