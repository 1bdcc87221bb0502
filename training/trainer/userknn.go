package trainer

import (
	"context"
	"errors"
	"fmt"
	"os"
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
// from the events of the data set, then every user's neighbours, searched on
// workers goroutines (0 = GOMAXPROCS) with the model's own online search.
// Everything is sparse: user vectors, the item→users inverted index and one
// per-worker accumulator per user; no users×users or users×items matrix is
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
	users := make([]userknn.User, len(userIDs))
	vec := userknn.NewVectorizer(items, o)
	var hist []dataset.Interaction
	for u, id := range userIDs {
		if u%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		hist = hist[:0]
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
		is, vs := vec.Vector(hist)
		users[u] = userknn.User{ID: id, Events: len(hist), Items: slices.Clone(is), Values: slices.Clone(vs)}
	}
	order, hist = nil, nil

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

// neighborsOf computes every user's neighbours on workers goroutines. Users
// are handed out in blocks by an atomic counter and each result goes to its
// user's slot, so the output does not depend on scheduling.
func neighborsOf(ctx context.Context, m *userknn.Model, workers int) ([][]userknn.Neighbor, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	const block = 64
	nu := m.Users()
	nb := make([][]userknn.Neighbor, nu)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if ctx.Err() != nil {
					return
				}
				lo := int(next.Add(block)) - block
				if lo >= nu {
					return
				}
				for u := lo; u < min(nu, lo+block); u++ {
					nb[u] = m.NeighborsOf(int32(u))
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nb, nil
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
	f, err := os.Create(filepath.Join(dir, userknn.DefaultFile))
	if err != nil {
		return models.Spec{}, err
	}
	if err := m.Save(f); err != nil {
		f.Close()
		return models.Spec{}, fmt.Errorf("write %s: %w", userknn.DefaultFile, err)
	}
	if err := f.Close(); err != nil {
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
