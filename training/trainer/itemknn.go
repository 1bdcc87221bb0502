package trainer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/itemknn"
	"github.com/recserve/recserve/models/topk"
	"github.com/recserve/recserve/models/vocab"
)

// ItemKNNOptions configure FitItemKNN. DefaultItemKNNOptions holds the tuned
// defaults; FitItemKNN takes every field literally except where noted.
type ItemKNNOptions struct {
	// Similarity compares item vectors ("" = cosine).
	Similarity itemknn.Similarity
	// Neighbors is M, how many most similar items each item keeps (≥ 1).
	Neighbors int
	// MinCommon drops pairs with fewer common users (0 = 1).
	MinCommon int
	// Shrinkage, when positive, multiplies a similarity by c/(c+Shrinkage),
	// c the number of common users, so pairs seen together by few users
	// count less than their raw similarity says.
	Shrinkage float64
	// MaxUserItems caps a user's distinct items (0 = no cap): a user with
	// more keeps the most recently touched ones. Pair counting costs
	// Σ_u |items(u)|², so a few bots or very heavy users would otherwise
	// dominate training time while adding little signal.
	MaxUserItems int
	// Damping turns a user's summed event weights on an item into the value
	// compared ("" = log); the model serves with the same damping.
	Damping itemknn.Damping
	// Weights turn events into implicit feedback: a user's value for an item
	// is the damped sum of the weights of the user's events on it (nil =
	// models.DefaultEventWeights). The model serves with the same weights.
	Weights models.EventWeights
	// HalfLifeDays is the serving-time decay of history weights, stored in
	// the model (see itemknn.Options); training does not use it.
	HalfLifeDays float64
	// Workers is the parallelism (0 = GOMAXPROCS). The result does not
	// depend on it.
	Workers int
}

// DefaultItemKNNOptions are the itemknn trainer's defaults: cosine
// similarity, 50 neighbours, shrinkage 20, log damping, the default event
// weights, a history half-life of 0.1 days (2.4 hours, so the current session
// leads) and at most 500 items per user. They were tuned on the demo data's
// time split, and checked on a second seed; the package documentation of
// models/itemknn lists what each one is worth in NDCG@10.
func DefaultItemKNNOptions() ItemKNNOptions {
	return ItemKNNOptions{
		Similarity:   itemknn.Cosine,
		Neighbors:    50,
		MinCommon:    1,
		Shrinkage:    20,
		MaxUserItems: 500,
		Damping:      itemknn.LogDamping,
		Weights:      models.DefaultEventWeights(),
		HalfLifeDays: 0.1,
	}
}

func (o *ItemKNNOptions) check() error {
	var err error
	if o.Similarity, err = itemknn.ParseSimilarity(string(o.Similarity)); err != nil {
		return err
	}
	if o.Damping, err = itemknn.ParseDamping(string(o.Damping)); err != nil {
		return err
	}
	if o.Neighbors < 1 {
		return fmt.Errorf("neighbors %d: want at least 1", o.Neighbors)
	}
	if o.MinCommon < 0 {
		return fmt.Errorf("min_common %d: want a non-negative number", o.MinCommon)
	}
	if o.MaxUserItems < 0 {
		return fmt.Errorf("max_user_items %d: want a non-negative number", o.MaxUserItems)
	}
	if o.MaxUserItems == 0 {
		o.MaxUserItems = math.MaxInt
	}
	if math.IsNaN(o.Shrinkage) || math.IsInf(o.Shrinkage, 0) || o.Shrinkage < 0 {
		return fmt.Errorf("shrinkage %v: want a finite non-negative number", o.Shrinkage)
	}
	if o.Weights == nil {
		o.Weights = models.DefaultEventWeights()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return nil
}

// FitItemKNN computes every item's top-M neighbours from d's interactions.
//
// Training is sparse: it builds the user → items and item → users lists and,
// for each item i, accumulates the dot products with every item sharing a user
// through those users' item lists, in O(Σ_u |items(u)|²) time and O(items)
// scratch per worker; no users × items or items × items matrix exists. Items
// are processed in parallel chunks by o.Workers goroutines, each writing only
// its own items' lists, and every list is computed by the same sequence of
// operations whichever worker runs it, so the model (and its artifact) is
// byte-identical for any parallelism. ctx is checked between chunks.
//
// The vocabulary is the items of d's interactions, sorted by id; user-item
// pairs whose summed event weight is not positive are ignored.
func FitItemKNN(ctx context.Context, d *dataset.Dataset, o ItemKNNOptions) (*itemknn.Model, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if len(d.Interactions) == 0 {
		return nil, errors.New("no interactions")
	}
	g, err := newCooccurrence(ctx, d, o)
	if err != nil {
		return nil, err
	}
	lists, err := g.neighbors(ctx)
	if err != nil {
		return nil, err
	}
	return itemknn.New(g.items, lists, itemknn.Options{Weights: o.Weights, HalfLifeDays: o.HalfLifeDays, Damping: o.Damping})
}

// cooccurrence holds the sparse user-item values in both orientations.
type cooccurrence struct {
	o     ItemKNNOptions
	items *vocab.Vocab
	// user u's items are uItem[uOff[u]:uOff[u+1]] (ascending) with values uVal.
	uOff  []int
	uItem []int32
	uVal  []float64
	// item i's users are iUser[iOff[i]:iOff[i+1]] (ascending) with values iVal.
	iOff  []int
	iUser []int32
	iVal  []float64
	// sq[i] = Σ_u x_ui², invNorm[i] = 1/√sq[i] (0 when sq[i] is 0),
	// cnt[i] = |U_i|.
	sq      []float64
	invNorm []float64
	cnt     []int32
}

// knnEvent is one interaction reduced to indices.
type knnEvent struct {
	u, i int32
	w    float64
	ts   int64
}

// indexShard is one worker's contiguous share of the interactions, with
// local user and item indices in order of first appearance.
type indexShard struct {
	lo, hi       int
	users, items []string
	err          error
	// userMap and itemMap turn local indices into global ones.
	userMap, itemMap []int32
}

// indexInteractions turns d's interactions into events with dense indices:
// users numbered in order of first appearance, items in id order (itemIDs).
// The string lookups run in parallel over contiguous shards whose local
// numbers are then merged in shard order, which reproduces the sequential
// numbering whatever the number of shards.
func indexInteractions(ctx context.Context, d *dataset.Dataset, o ItemKNNOptions) (evs []knnEvent, nUsers int, itemIDs []string, err error) {
	n := len(d.Interactions)
	evs = make([]knnEvent, n)
	shards := make([]indexShard, max(min(o.Workers, n/50000), 1))
	for s := range shards {
		shards[s].lo, shards[s].hi = n*s/len(shards), n*(s+1)/len(shards)
	}
	var wg sync.WaitGroup
	for s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh := &shards[s]
			users, items := map[string]int32{}, map[string]int32{}
			for k := sh.lo; k < sh.hi; k++ {
				in := &d.Interactions[k]
				u, ok := users[in.UserID]
				if !ok {
					u = int32(len(sh.users))
					users[in.UserID] = u
					sh.users = append(sh.users, in.UserID)
				}
				i, ok := items[in.ItemID]
				if !ok {
					i = int32(len(sh.items))
					items[in.ItemID] = i
					sh.items = append(sh.items, in.ItemID)
				}
				w := o.Weights.Of(*in)
				if math.IsNaN(w) || math.IsInf(w, 0) {
					sh.err = fmt.Errorf("interaction %d (user %q, item %q): weight %v is not finite", k, in.UserID, in.ItemID, w)
					return
				}
				evs[k] = knnEvent{u: u, i: i, w: w, ts: in.Timestamp}
			}
		}()
	}
	wg.Wait()
	for _, sh := range shards {
		if sh.err != nil {
			return nil, 0, nil, sh.err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, nil, err
	}
	// Merge in shard order: global numbers in order of first appearance.
	users, items := map[string]int32{}, map[string]int32{}
	var ids []string
	for s := range shards {
		sh := &shards[s]
		sh.userMap = make([]int32, len(sh.users))
		for u, id := range sh.users {
			g, ok := users[id]
			if !ok {
				g = int32(len(users))
				users[id] = g
			}
			sh.userMap[u] = g
		}
		sh.itemMap = make([]int32, len(sh.items))
		for i, id := range sh.items {
			g, ok := items[id]
			if !ok {
				g = int32(len(ids))
				items[id] = g
				ids = append(ids, id)
			}
			sh.itemMap[i] = g
		}
	}
	if len(users) > math.MaxInt32-1 || len(ids) > math.MaxInt32-1 {
		return nil, 0, nil, errors.New("too many users or items for int32 indices")
	}
	// Items in id order.
	order := make([]int32, len(ids))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(ids[a], ids[b]) })
	rank := make([]int32, len(ids))
	itemIDs = make([]string, len(ids))
	for r, i := range order {
		rank[i] = int32(r)
		itemIDs[r] = ids[i]
	}
	for s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh := &shards[s]
			for k := sh.lo; k < sh.hi; k++ {
				evs[k].u = sh.userMap[evs[k].u]
				evs[k].i = rank[sh.itemMap[evs[k].i]]
			}
		}()
	}
	wg.Wait()
	return evs, len(users), itemIDs, ctx.Err()
}

func newCooccurrence(ctx context.Context, d *dataset.Dataset, o ItemKNNOptions) (*cooccurrence, error) {
	evs, nUsers, sorted, err := indexInteractions(ctx, d, o)
	if err != nil {
		return nil, err
	}
	voc, err := vocab.New(sorted)
	if err != nil {
		return nil, err
	}
	nItems := len(sorted)

	// Group by user (a stable counting sort), then order each user's events
	// by item.
	byUser := countingSort(evs, nUsers, func(e *knnEvent) int32 { return e.u })
	evs = nil
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	g := &cooccurrence{o: o, items: voc, uOff: make([]int, 1, nUsers+1),
		uItem: make([]int32, 0, len(byUser)), uVal: make([]float64, 0, len(byUser))}
	type pair struct {
		i  int32
		v  float64
		ts int64
	}
	var pairs []pair
	for lo := 0; lo < len(byUser); {
		u := byUser[lo].u
		hi := lo
		for hi < len(byUser) && byUser[hi].u == u {
			hi++
		}
		// Stable, so a user's events on one item keep their data order.
		slices.SortStableFunc(byUser[lo:hi], func(a, b knnEvent) int { return cmp.Compare(a.i, b.i) })
		pairs = pairs[:0]
		for k := lo; k < hi; k++ {
			e := &byUser[k]
			if n := len(pairs); n > 0 && pairs[n-1].i == e.i {
				pairs[n-1].v += e.w
				pairs[n-1].ts = max(pairs[n-1].ts, e.ts)
				continue
			}
			pairs = append(pairs, pair{e.i, e.w, e.ts})
		}
		lo = hi
		pairs = slices.DeleteFunc(pairs, func(p pair) bool { return !(p.v > 0) })
		if len(pairs) > o.MaxUserItems {
			// Keep the most recent, ties by index, then restore index order.
			slices.SortFunc(pairs, func(a, b pair) int {
				if c := cmp.Compare(b.ts, a.ts); c != 0 {
					return c
				}
				return cmp.Compare(a.i, b.i)
			})
			pairs = pairs[:o.MaxUserItems]
			slices.SortFunc(pairs, func(a, b pair) int { return cmp.Compare(a.i, b.i) })
		}
		mean := 0.0
		for k := range pairs {
			pairs[k].v = o.Damping.Apply(pairs[k].v)
			mean += pairs[k].v
		}
		mean /= float64(max(len(pairs), 1))
		for _, p := range pairs {
			x := p.v
			switch o.Similarity {
			case itemknn.AdjustedCosine:
				x -= mean
			case itemknn.Jaccard:
				x = 1
			}
			g.uItem = append(g.uItem, p.i)
			g.uVal = append(g.uVal, x)
		}
		// Users are numbered in order of appearance and every user has an
		// event, so u == len(g.uOff)-1 here; a user left with no pairs gets
		// an empty list.
		g.uOff = append(g.uOff, len(g.uItem))
	}
	byUser = nil

	// Transpose: item → users, users ascending because users are visited in
	// order.
	g.iOff = make([]int, nItems+1)
	for _, i := range g.uItem {
		g.iOff[i+1]++
	}
	for i := range nItems {
		g.iOff[i+1] += g.iOff[i]
	}
	g.iUser = make([]int32, len(g.uItem))
	g.iVal = make([]float64, len(g.uItem))
	next := slices.Clone(g.iOff[:nItems])
	g.sq = make([]float64, nItems)
	g.cnt = make([]int32, nItems)
	for u := range nUsers {
		for k := g.uOff[u]; k < g.uOff[u+1]; k++ {
			i, x := g.uItem[k], g.uVal[k]
			g.iUser[next[i]], g.iVal[next[i]] = int32(u), x
			next[i]++
			g.sq[i] += x * x
			g.cnt[i]++
		}
	}
	g.invNorm = make([]float64, nItems)
	for i, sq := range g.sq {
		if sq > 0 {
			g.invNorm[i] = 1 / math.Sqrt(sq)
		}
	}
	return g, ctx.Err()
}

// countingSort returns evs stably ordered by key, keys in [0, n).
func countingSort(evs []knnEvent, n int, key func(*knnEvent) int32) []knnEvent {
	pos := make([]int, n+1)
	for k := range evs {
		pos[key(&evs[k])+1]++
	}
	for i := range n {
		pos[i+1] += pos[i]
	}
	out := make([]knnEvent, len(evs))
	for k := range evs {
		c := key(&evs[k])
		out[pos[c]] = evs[k]
		pos[c]++
	}
	return out
}

// itemKNNChunk is how many items a worker claims at a time: small enough to
// balance popular (expensive) items across workers, large enough that the
// shared counter and the context check cost nothing.
const itemKNNChunk = 32

// neighbors computes every item's top-M list in parallel: workers claim
// chunks of items and write only those items' lists. Each pair's similarity
// is computed from both of its items' sides, by the same operations (see
// similarity), so the lists depend neither on the scheduling nor on the
// number of workers.
//
// Computing each pair once and offering it to both items' heaps would halve
// the pair counting, but on the 50k × 20k demo data it made training slower:
// the other item's heap is cold in the cache, and 7.5M of the 69M offers
// reach it.
func (g *cooccurrence) neighbors(ctx context.Context) ([][]itemknn.Neighbor, error) {
	n := g.items.Len()
	lists := make([][]itemknn.Neighbor, n)
	errs := make([]error, g.o.Workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range g.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := newPairAccumulator(n, g.o.Neighbors)
			for {
				start := int(next.Add(itemKNNChunk)) - itemKNNChunk
				if start >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				for i := start; i < min(start+itemKNNChunk, n); i++ {
					lists[i] = acc.item(g, int32(i))
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return lists, nil
}

// pairAcc accumulates one item pair: interleaved so that a pair costs one
// cache line, not two.
type pairAcc struct {
	dot    float64
	common int32
}

// pairAccumulator is one worker's scratch, sized to the catalogue.
type pairAccumulator struct {
	acc []pairAcc
	// touched has capacity n+1: every item can be touched once, and the
	// branch-free append in item writes one slot past the last touch.
	touched []int32
	top     []topk.Entry[float32, int32, struct{}] // item's heap of the best M (Tie: neighbour index)
	m       int
}

func newPairAccumulator(n, m int) *pairAccumulator {
	return &pairAccumulator{acc: make([]pairAcc, n), touched: make([]int32, 0, n+1), m: m}
}

// item returns item i's neighbour list in artifact order.
func (a *pairAccumulator) item(g *cooccurrence, i int32) []itemknn.Neighbor {
	acc, touched := a.acc, a.touched[:cap(a.touched)]
	nt := 0
	for p := g.iOff[i]; p < g.iOff[i+1]; p++ {
		u, xi := g.iUser[p], g.iVal[p]
		lo, hi := g.uOff[u], g.uOff[u+1]
		items, vals := g.uItem[lo:hi], g.uVal[lo:hi]
		vals = vals[:len(items)]
		// i itself is among the items; it is skipped below rather than
		// tested for on every pair. The first-touch test is written to
		// compile without a branch: it is taken at random.
		for k, j := range items {
			e := &acc[j]
			touched[nt] = j
			nt += int(1 - min(e.common, 1))
			e.common++
			e.dot += xi * vals[k]
		}
	}
	top := topk.Bounded(a.m, a.top)
	minCommon := int32(max(g.o.MinCommon, 1))
	shrink := g.o.Shrinkage
	for _, j := range touched[:nt] {
		c, d := acc[j].common, acc[j].dot
		acc[j] = pairAcc{}
		if j == i || c < minCommon {
			continue
		}
		s := g.similarity(i, j, d, c)
		if shrink > 0 {
			s *= float64(c) / (float64(c) + shrink)
		}
		s32 := float32(s)
		if !(s32 > 0) || math.IsInf(float64(s32), 0) {
			continue
		}
		if e := (topk.Entry[float32, int32, struct{}]{Score: s32, Tie: j}); top.Admits(e) {
			top.Push(e)
		}
	}
	// Best first is artifact order: descending similarity, ties by
	// ascending index (itemknn.SortNeighbors).
	best := top.Sorted()
	a.top = best[:0]
	if len(best) == 0 {
		return nil
	}
	out := make([]itemknn.Neighbor, len(best))
	for k, e := range best {
		out[k] = itemknn.Neighbor{Index: e.Tie, Sim: e.Score}
	}
	return out
}

// similarity of items i and j from their dot product and common users. Every
// formula is symmetric in i and j bit for bit: the dot product sums the same
// products over the same users in the same (ascending) order from either
// side, and the per-item factors are combined by commutative products and
// sums before they meet the dot product.
func (g *cooccurrence) similarity(i, j int32, dot float64, common int32) float64 {
	switch g.o.Similarity {
	case itemknn.Jaccard:
		return float64(common) / float64(g.cnt[i]+g.cnt[j]-common)
	case itemknn.Euclidean:
		d2 := max(g.sq[i]+g.sq[j]-2*dot, 0)
		return 1 / (1 + math.Sqrt(d2))
	default: // cosine of the (centred, for adjusted_cosine) values
		return dot * (g.invNorm[i] * g.invNorm[j])
	}
}

// itemKNNParams are the --param keys of the itemknn trainer.
var itemKNNParams = []string{
	"similarity", "neighbors", "min_common", "shrinkage", "max_user_items",
	"damping", "event_weights", "half_life_days",
}

// parseItemKNNParams turns --param settings into options, starting from
// DefaultItemKNNOptions.
func parseItemKNNParams(p Params) (ItemKNNOptions, error) {
	o := DefaultItemKNNOptions()
	if err := unknownParams(p, itemKNNParams...); err != nil {
		return o, err
	}
	var err error
	if s, ok := p["similarity"]; ok {
		if o.Similarity, err = itemknn.ParseSimilarity(s); err != nil {
			return o, err
		}
	}
	if s, ok := p["damping"]; ok {
		if o.Damping, err = itemknn.ParseDamping(s); err != nil {
			return o, err
		}
	}
	intParam := func(key string, v *int, lo int) error {
		s, ok := p[key]
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo {
			return fmt.Errorf("%s %q: want an integer ≥ %d", key, s, lo)
		}
		*v = n
		return nil
	}
	floatParam := func(key string, v *float64) error {
		s, ok := p[key]
		if !ok {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return fmt.Errorf("%s %q: want a finite non-negative number", key, s)
		}
		*v = f
		return nil
	}
	if err := errors.Join(
		intParam("neighbors", &o.Neighbors, 1),
		intParam("min_common", &o.MinCommon, 1),
		intParam("max_user_items", &o.MaxUserItems, 0),
		floatParam("shrinkage", &o.Shrinkage),
		floatParam("half_life_days", &o.HalfLifeDays),
	); err != nil {
		return o, err
	}
	if s, ok := p["event_weights"]; ok {
		if o.Weights, err = models.ParseEventWeights(s); err != nil {
			return o, err
		}
	}
	return o, nil
}

// fitItemKNN is the itemknn trainer: it writes itemknn.bin and items.txt into
// dir and returns the spec, every setting recorded under params.
func fitItemKNN(ctx context.Context, d *dataset.Dataset, p Params, dir string) (models.Spec, error) {
	o, err := parseItemKNNParams(p)
	if err != nil {
		return models.Spec{}, err
	}
	m, err := FitItemKNN(ctx, d, o)
	if err != nil {
		return models.Spec{}, err
	}
	if err := m.Items().WriteFile(filepath.Join(dir, vocab.DefaultFile)); err != nil {
		return models.Spec{}, err
	}
	if err := saveArtifact(dir, itemknn.DefaultFile, m); err != nil {
		return models.Spec{}, err
	}
	return models.Spec{
		File:  itemknn.DefaultFile,
		Items: vocab.DefaultFile,
		Params: map[string]any{
			"similarity":     string(o.Similarity),
			"neighbors":      o.Neighbors,
			"min_common":     o.MinCommon,
			"shrinkage":      o.Shrinkage,
			"max_user_items": o.MaxUserItems,
			"damping":        string(o.Damping),
			"event_weights":  o.Weights.String(),
			"half_life_days": o.HalfLifeDays,
		},
	}, nil
}
