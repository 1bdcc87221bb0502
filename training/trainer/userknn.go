package trainer

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/userknn"
	"github.com/recserve/recserve/models/vocab"
)

// FitUserKNN fits a user-kNN model (see package userknn): each user's vector
// from the user's events in time order (as the serving store orders a
// history), then every user's neighbours, searched with the model's own
// online search. Both steps run on workers goroutines (0 = GOMAXPROCS).
// Everything is sparse: user vectors, the item→users inverted index and one
// block of accumulators per worker; no users×users or users×items matrix is
// built. Its cost is Σ over items of (users of the item)², and the output is
// identical whatever the number of workers or their scheduling.
func FitUserKNN(ctx context.Context, d *dataset.Dataset, o userknn.Options, workers int) (*userknn.Model, error) {
	if len(d.Interactions) == 0 {
		return nil, errors.New("no interactions")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// The vocabulary: every item with an interaction, sorted by id.
	itemSet := map[string]struct{}{}
	userSet := map[string]int32{}
	for _, in := range d.Interactions {
		itemSet[in.ItemID] = struct{}{}
		userSet[in.UserID]++
	}
	itemIDs := make([]string, 0, len(itemSet))
	for id := range itemSet {
		itemIDs = append(itemIDs, id)
	}
	slices.Sort(itemIDs)
	items, err := vocab.New(itemIDs)
	if err != nil {
		return nil, err
	}
	userIDs := make([]string, 0, len(userSet))
	for id := range userSet {
		userIDs = append(userIDs, id)
	}
	slices.Sort(userIDs)

	// Group the interactions by user (counting sort, stable in file order),
	// then order each user's events by time as the serving store does.
	start := make([]int32, len(userIDs)+1)
	for u, id := range userIDs {
		start[u+1] = start[u] + userSet[id]
		userSet[id] = int32(u)
	}
	order := make([]int32, len(d.Interactions))
	next := slices.Clone(start[:len(userIDs)])
	for k, in := range d.Interactions {
		u := userSet[in.UserID]
		order[next[u]] = int32(k)
		next[u]++
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	users := make([]userknn.User, len(userIDs))
	vecs := make([]*userknn.Vectorizer, workers)
	hists := make([][]dataset.Interaction, workers)
	err = parallel(ctx, len(userIDs), workers, func(w, u int) {
		if vecs[w] == nil {
			vecs[w] = userknn.NewVectorizer(items, o)
		}
		hist := hists[w][:0]
		for _, k := range order[start[u]:start[u+1]] {
			hist = append(hist, d.Interactions[k])
		}
		slices.SortStableFunc(hist, func(a, b dataset.Interaction) int {
			switch {
			case a.Timestamp < b.Timestamp:
				return -1
			case a.Timestamp > b.Timestamp:
				return 1
			}
			return 0
		})
		is, vs := vecs[w].Vector(hist)
		users[u] = userknn.User{ID: userIDs[u], Events: len(hist), Items: slices.Clone(is), Values: slices.Clone(vs)}
		hists[w] = hist
	})
	if err != nil {
		return nil, err
	}
	order, vecs, hists = nil, nil, nil

	m, err := userknn.New(items, users, o)
	if err != nil {
		return nil, err
	}
	users = nil
	nb, err := neighborsOf(ctx, m, workers)
	if err != nil {
		return nil, err
	}
	return m.WithNeighbors(nb)
}

// neighborsOf computes every user's neighbours on workers goroutines.
func neighborsOf(ctx context.Context, m *userknn.Model, workers int) ([][]userknn.Neighbor, error) {
	nb := make([][]userknn.Neighbor, m.Users())
	err := parallel(ctx, len(nb), workers, func(_, u int) {
		nb[u] = m.NeighborsOf(int32(u))
	})
	return nb, err
}

// parallel calls fn(worker, i) for every i in [0, n) on workers goroutines,
// handing out indices in blocks through an atomic counter. Results written to
// per-index slots therefore do not depend on scheduling. It stops early, with
// ctx's error, when ctx is done.
func parallel(ctx context.Context, n, workers int, fn func(worker, i int)) error {
	const block = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := int(next.Add(block)) - block
				if lo >= n {
					return
				}
				for i := lo; i < min(n, lo+block); i++ {
					fn(w, i)
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// fitUserKNN trains the userknn kind: params are userknn's (see
// userknn.ParamKeys); it writes userknn.bin and items.txt.
func fitUserKNN(ctx context.Context, d *dataset.Dataset, p Params, dir string) (models.Spec, error) {
	if err := unknownParams(p, userknn.ParamKeys()...); err != nil {
		return models.Spec{}, err
	}
	raw := models.Spec{Params: map[string]any{}}
	for k, v := range p {
		raw.Params[k] = v
	}
	o, err := userknn.OptionsFromSpec(raw)
	if err != nil {
		return models.Spec{}, err
	}
	m, err := FitUserKNN(ctx, d, o, 0)
	if err != nil {
		return models.Spec{}, err
	}
	if err := m.Items().WriteFile(filepath.Join(dir, vocab.DefaultFile)); err != nil {
		return models.Spec{}, err
	}
	if err := saveArtifact(dir, userknn.DefaultFile, m); err != nil {
		return models.Spec{}, err
	}
	return models.Spec{
		File:   userknn.DefaultFile,
		Items:  vocab.DefaultFile,
		Params: o.Params(),
		Metadata: map[string]any{
			"users": m.Users(),
		},
	}, nil
}
