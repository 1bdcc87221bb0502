package serving

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/store"
)

// Probe sizes: the history of the probe user is its newest events, and the
// probe scores the most popular items.
const (
	probeHistory = 50
	probeItems   = 20
)

// probe builds the request a new model version must answer before it may
// serve, from the store: the most active user's history and the most
// interacted-with items, so validation exercises a model on the inputs it
// will see. It returns nil (the repository's cold-start probe) for a data set
// without interactions.
func probe(ctx context.Context, st *store.Memory) *repository.Probe {
	users, items := map[string]int{}, map[string]int{}
	for in := range st.Interactions() {
		users[in.UserID]++
		items[in.ItemID]++
	}
	if len(users) == 0 {
		return nil
	}
	user := ""
	for u, n := range users {
		if n > users[user] || n == users[user] && u < user {
			user = u
		}
	}
	hist, err := st.History(ctx, user)
	if err != nil {
		return nil
	}
	hist = hist[max(0, len(hist)-probeHistory):]
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(items[b], items[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return &repository.Probe{
		Query: models.Query{UserID: user, History: slices.Clone(hist), K: 10},
		Items: ids[:min(probeItems, len(ids))],
	}
}
