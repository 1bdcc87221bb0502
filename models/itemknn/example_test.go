package itemknn_test

import (
	"context"
	"fmt"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/itemknn"
	"github.com/recserve/recserve/models/vocab"
)

// A phone's neighbours are a case and a charger; a case's are a phone and a
// screen protector. A shopper who viewed the phone and carted the case gets
// the charger and the screen protector, scored by the damped event weights
// (log(1+1) for the view, log(1+3) for the cart) times the similarities.
func ExampleModel_Recommend() {
	items, _ := vocab.New([]string{"case", "charger", "phone", "protector"})
	m, err := itemknn.New(items, [][]itemknn.Neighbor{
		{{Index: 2, Sim: 0.5}, {Index: 3, Sim: 0.25}}, // case
		nil, // charger
		{{Index: 0, Sim: 0.5}, {Index: 1, Sim: 0.25}}, // phone
		nil, // protector
	}, itemknn.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	seen := map[string]bool{"phone": true, "case": true}
	recs, _ := m.Recommend(context.Background(), models.Query{
		History: []dataset.Interaction{
			{ItemID: "phone", Event: dataset.View, Value: 1, Timestamp: 100},
			{ItemID: "case", Event: dataset.Cart, Value: 1, Timestamp: 200},
		},
		K:     5,
		Allow: func(id string) bool { return !seen[id] },
	})
	for _, r := range recs {
		fmt.Printf("%s %.3f\n", r.ItemID, r.Score)
	}
	// Output:
	// protector 0.347
	// charger 0.173
}
