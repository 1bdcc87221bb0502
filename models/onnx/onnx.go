// Package onnx serves ONNX models through onnxruntime (the onnx model kind):
// networks trained in PyTorch or anywhere else and exported to ONNX, deployed
// with a model.yaml naming their signature.
//
// A signature says how a request becomes the model's one input tensor and
// what its output means (see UserVector, Sequence, Features). At load the
// model file's real inputs and outputs (names, element types, ranks, fixed
// dimensions) are checked against the signature, one warm-up batch must give
// finite outputs, and only then does the version serve. user_vector and
// sequence models are Recommenders and Scorers over their item vocabulary;
// features models are models.RowModels, which the feature pipeline turns
// into Scorers.
//
// onnxruntime is a shared library loaded at run time (`make ort`); the
// kind's builder is a closure over the loaded Runtime, and without one every
// onnx model fails to load with an error saying how to get the library, while
// the Go-native kinds keep serving.
//
// model.yaml params (all optional):
//
//	weights             user_vector: event weights, "view:1,cart:3,purchase:5,rating:1"
//	events              sequence: the events kept, default "view,cart,purchase"
//	dedupe_consecutive  sequence: collapse consecutive repeats (default true)
//	max_len             sequence: L, required when the model's length is dynamic
//	intra_op_threads    onnxruntime threads per Run (default 1: parallelism
//	                    comes from concurrent requests and batching; 0 = all cores)
//	max_batch_size      > 1 turns dynamic batching on: concurrent requests'
//	                    rows run together, up to this many per Run
//	max_queue_delay_us  how long a request may wait for a batch to fill (default 0: only rows that queued while a Run was busy)
//	max_queue_size      requests waiting before new ones fail with
//	                    models.ErrOverloaded (default 1024)
//	runners             Runs in flight at once when batching (default 2)
package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
	"github.com/recserve/recserve/models/vocab"
)

// Kind is the model.yaml kind of this family.
const Kind = "onnx"

// Builder returns the models.Builder of the onnx kind, creating sessions on
// rt. A nil rt gives Unavailable's builder.
func Builder(rt *Runtime) models.Builder {
	if rt == nil {
		return Unavailable(errors.New("no runtime was given to the model kinds"))
	}
	return func(ctx context.Context, env models.Env, v models.Version) (models.Model, error) {
		return build(ctx, rt, env, v)
	}
}

// Unavailable returns the builder registered for the onnx kind when
// onnxruntime could not be loaded: every onnx model then fails to load with
// an error wrapping ErrNoLibrary that gives reason and the fix, and the
// other kinds are unaffected.
func Unavailable(reason error) models.Builder {
	why := "unknown reason"
	if reason != nil {
		why = strings.TrimPrefix(reason.Error(), ErrNoLibrary.Error()+": ")
	}
	return func(context.Context, models.Env, models.Version) (models.Model, error) {
		return nil, fmt.Errorf("onnx: %w (%s): run `make ort` or set %s", ErrNoLibrary, why, LibraryEnv)
	}
}

// build loads one version: model.yaml, the vocabulary, the tensor check, the
// session and its warm-up.
func build(ctx context.Context, rt *Runtime, env models.Env, v models.Version) (models.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(v.Spec)
	if err != nil {
		return nil, err
	}
	c.batch.metrics, c.batch.model, c.batch.version = env.Batches, v.Name, v.ID
	if v.Spec.File == "" {
		return nil, fmt.Errorf("file is required: the .onnx file, relative to %s", v.Dir)
	}
	path, err := models.Path(v.Dir, v.Spec.File)
	if err != nil {
		return nil, err
	}
	var items *vocab.Vocab
	var features []string
	switch c.signature {
	case UserVector, Sequence:
		if v.Spec.Items == "" {
			return nil, fmt.Errorf("items is required for signature %s: the vocabulary file (line i = output column i)", c.signature)
		}
		p, err := models.Path(v.Dir, v.Spec.Items)
		if err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		if items, err = vocab.ReadFile(p); err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		if items.Len() == 0 {
			return nil, fmt.Errorf("items: %s is empty", p)
		}
	case Features:
		if len(v.Spec.Features) == 0 {
			return nil, fmt.Errorf("features is required for signature %s: the names of the input's columns, in order", Features)
		}
		seen := map[string]bool{}
		for _, f := range v.Spec.Features {
			if f == "" || seen[f] {
				return nil, fmt.Errorf("features: %q is empty or listed twice", f)
			}
			seen[f] = true
		}
		features = slices.Clone(v.Spec.Features)
	}
	if err := rt.acquire(); err != nil {
		return nil, fmt.Errorf("onnx: %w: run `make ort` or set %s", err, LibraryEnv)
	}
	m, err := open(path, c, v.Spec, items, features, env.Logger)
	if err != nil {
		return nil, errors.Join(err, releaseEnv())
	}
	return m, nil
}

// open reads the model's tensors, checks them against the signature and
// creates the session.
func open(path string, c config, spec models.Spec, items *vocab.Vocab, features []string, log *slog.Logger) (models.Model, error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%s: read the model's inputs and outputs: %w", path, err)
	}
	n := 0
	if items != nil {
		n = items.Len()
	}
	t, err := bindTensors(&c, spec, ins, outs, n, len(features))
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", c.signature, err)
	}
	switch c.signature {
	case UserVector:
		s, err := newSession[float32](path, t, c)
		if err != nil {
			return nil, err
		}
		return newRanker(c, items, &rankCore[float32]{s: s, row: func(q *models.Query) ([]float32, bool) {
			return userVectorRow(q, items, c.weights)
		}, items: func(row []float32) []string {
			var ids []string
			for j, x := range row {
				if x != 0 {
					ids = append(ids, items.ID(int32(j)))
				}
			}
			return ids
		}}), nil
	case Sequence:
		s, err := newSession[int64](path, t, c)
		if err != nil {
			return nil, err
		}
		return newRanker(c, items, &rankCore[int64]{s: s, row: func(q *models.Query) ([]int64, bool) {
			return sequenceRow(q, items, &c, t.width)
		}, items: func(row []int64) []string {
			var ids []string
			for _, v := range row {
				if v > 0 {
					ids = append(ids, items.ID(int32(v-1)))
				}
			}
			return ids
		}}), nil
	default:
		s, err := newSession[float32](path, t, c)
		if err != nil {
			return nil, err
		}
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		return &RowModel{features: features, s: s, log: log}, nil
	}
}

// core is a Ranker's signature-specific half: the input row of a query and
// the session it runs on.
type core interface {
	// scores runs q's input row and returns one score per vocabulary item;
	// when the row holds no known item and !always it returns nil without
	// running the model.
	scores(ctx context.Context, q *models.Query, always bool) ([]float32, error)
	// input lists the items q's input row holds, in row order.
	input(q *models.Query) []string
	close() error
}

// rankCore is core for an input element type.
type rankCore[T element] struct {
	s   *session[T]
	row func(q *models.Query) ([]T, bool)
	// items lists the items a row holds: the sequence's items, oldest
	// first, or the user vector's weighted items in vocabulary order.
	items func(row []T) []string
}

func (c *rankCore[T]) input(q *models.Query) []string {
	row, _ := c.row(q)
	return c.items(row)
}

func (c *rankCore[T]) scores(ctx context.Context, q *models.Query, always bool) ([]float32, error) {
	row, known := c.row(q)
	if !known && !always {
		return nil, nil
	}
	out, err := c.s.do(ctx, [][]T{row})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (c *rankCore[T]) close() error { return c.s.close() }

// Ranker is a loaded user_vector or sequence model: a models.Recommender and
// models.Scorer over its item vocabulary. It is safe for concurrent use: all
// goroutines share one onnxruntime session (see session).
type Ranker struct {
	signature string
	items     *vocab.Vocab
	rank      []int32 // rank[i]: position of item i's id in sorted order, for ties
	core      core
	// entries recycles the heap storage of top and topAll
	// (*[]topk.Entry[float32, int32, int32]): 12 bytes an item, which
	// topAll would otherwise allocate for the whole vocabulary per call.
	entries sync.Pool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ models.Recommender    = (*Ranker)(nil)
	_ models.Scorer         = (*Ranker)(nil)
	_ models.InputExplainer = (*Ranker)(nil)
	_ models.RowModel       = (*RowModel)(nil)
	_ models.RowBatcher     = (*RowModel)(nil)
)

// ExplainInput returns the items of q's input row: for a sequence model the
// sequence it reads (vocabulary items of the history, oldest first, cut to
// the input's length), for a user_vector model the items with a weight. It
// is what a debugging request shows, so a tracked event can be seen
// reaching the model.
func (r *Ranker) ExplainInput(q models.Query) []string { return r.core.input(&q) }

func newRanker(c config, items *vocab.Vocab, core core) *Ranker {
	order := make([]int32, items.Len())
	for i := range order {
		order[i] = int32(i)
	}
	ids := items.IDs()
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(ids[a], ids[b]) })
	rank := make([]int32, len(order))
	for r, i := range order {
		rank[i] = int32(r)
	}
	return &Ranker{signature: c.signature, items: items, rank: rank, core: core}
}

// Signature is the model's signature, UserVector or Sequence.
func (m *Ranker) Signature() string { return m.signature }

// Items is the model's vocabulary: output column i scores Items().ID(i).
func (m *Ranker) Items() *vocab.Vocab { return m.items }

// Recommend returns at most q.K allowed vocabulary items by descending model
// score, ties by smaller id, NaN scores never. q.Allow is called lazily, on
// items in rank order, until K are accepted, so filtered items do not shrink
// the answer; nothing else is excluded (the router's Allow already removes
// seen items). A history without any vocabulary item (of the counted events)
// gets an empty answer without running the model, so the route's fallback
// answers cold users.
func (m *Ranker) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 {
		return nil, nil
	}
	scores, err := m.core.scores(ctx, &q, false)
	if err != nil || scores == nil {
		return nil, err
	}
	return m.top(scores, &q), nil
}

// top selects the K best allowed items of scores. Most items are rejected by
// one comparison against a bounded min-heap of the best few candidates
// (1.5K+8, without consulting Allow); the candidates are then taken best
// first until K are allowed. Only if too many of them are filtered out does
// it fall back to a max-heap over every item, popped in rank order, so
// filtered items never shrink the answer. Either way only the items examined
// pay for Allow.
func (m *Ranker) top(scores []float32, q *models.Query) []models.Scored {
	want := min(q.K, len(scores))
	c := min(q.K+q.K/2+8, len(scores))
	buf := m.getEntries()
	defer m.entries.Put(buf)
	cand := topk.Bounded(c, slices.Grow((*buf)[:0], c))
	// floor is the score of the worst candidate once the heap is full: an
	// item scoring below it is rejected by one float comparison.
	floor := float32(math.Inf(-1))
	for i, s := range scores {
		if s < floor || s != s { // NaN: never a candidate
			continue
		}
		j := int32(i)
		e := topk.Entry[float32, int32, int32]{Score: s, Tie: m.rank[j], Value: j}
		if !cand.Full() {
			cand.Push(e)
			if cand.Full() {
				floor = cand.Top().Score
			}
			continue
		}
		if e.Better(cand.Top()) {
			cand.ReplaceTop(e)
			floor = cand.Top().Score
		}
	}
	best := cand.Sorted() // the candidates, best first
	*buf = best[:0]
	out := make([]models.Scored, 0, want)
	for _, e := range best {
		if id := m.items.ID(e.Value); q.Allowed(id) {
			out = append(out, models.Scored{ItemID: id, Score: float64(e.Score)})
			if len(out) == want {
				return out
			}
		}
	}
	if len(best) < c || c == len(scores) {
		return out // every item was a candidate
	}
	return m.topAll(scores, q)
}

// topAll is top over every item: a max-heap built in O(N) and popped in
// rank order until K allowed items are found.
func (m *Ranker) topAll(scores []float32, q *models.Query) []models.Scored {
	buf := m.getEntries()
	defer m.entries.Put(buf)
	es := slices.Grow((*buf)[:0], len(scores))
	*buf = es
	for i, s := range scores {
		if !math.IsNaN(float64(s)) {
			es = append(es, topk.Entry[float32, int32, int32]{Score: s, Tie: m.rank[i], Value: int32(i)})
		}
	}
	h := topk.BestFirst(es)
	out := make([]models.Scored, 0, min(q.K, len(es)))
	for len(out) < q.K {
		e, ok := h.Pop()
		if !ok {
			break
		}
		if id := m.items.ID(e.Value); q.Allowed(id) {
			out = append(out, models.Scored{ItemID: id, Score: float64(e.Score)})
		}
	}
	return out
}

// getEntries returns a buffer from m.entries, for top and topAll to return.
func (m *Ranker) getEntries() *[]topk.Entry[float32, int32, int32] {
	if p, ok := m.entries.Get().(*[]topk.Entry[float32, int32, int32]); ok {
		return p
	}
	return new([]topk.Entry[float32, int32, int32])
}

// Score returns the model's score of each item, in the order of itemIDs; the
// model runs even for a history without vocabulary items (an all-zero or
// all-padding input). Allow is not consulted. An item outside the
// vocabulary (in the catalogue but unknown to the model) gets the lowest
// score the model gave any vocabulary item for this query: it ranks with the
// model's worst item, and stays finite so blends and sorts stay well defined.
func (m *Ranker) Score(ctx context.Context, q models.Query, itemIDs []string) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(itemIDs) == 0 {
		return []float64{}, nil
	}
	scores, err := m.core.scores(ctx, &q, true)
	if err != nil {
		return nil, err
	}
	lowest := math.Inf(1)
	for _, s := range scores {
		if float64(s) < lowest {
			lowest = float64(s)
		}
	}
	out := make([]float64, len(itemIDs))
	for k, id := range itemIDs {
		if i, ok := m.items.Index(id); ok {
			out[k] = float64(scores[i])
		} else {
			out[k] = lowest
		}
	}
	return out, nil
}

// Close stops the batcher, destroys the session and releases the runtime;
// it is called once, after the version has drained (later calls return the
// first call's result).
func (m *Ranker) Close() error {
	m.closeOnce.Do(func() { m.closeErr = errors.Join(m.core.close(), releaseEnv()) })
	return m.closeErr
}

// RowModel is a loaded features model: a models.RowModel (and RowBatcher)
// whose rows are the model.yaml features in order. Loaded with a feature
// pipeline (the server, `recctl eval`) it gains the models.Scorer role;
// `recctl predict` feeds it CSV rows. It is safe for concurrent use.
//
// NaN inputs (missing values) reach the network as NaN: a model that cannot
// take missing values should impute inside the exported graph (for example
// torch.nan_to_num). models.RowModel has no error result, so a failed Run
// (including a full batching queue) writes NaN predictions and is logged.
type RowModel struct {
	features []string
	s        *session[float32]
	log      *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Features names the values of a row, in order. The slice must not be
// modified.
func (m *RowModel) Features() []string { return m.features }

// NumOutputs is 1: one score per row.
func (m *RowModel) NumOutputs() int { return 1 }

// PredictRow writes the prediction for row x to out[0]; values beyond
// len(x) are missing (NaN).
func (m *RowModel) PredictRow(x []float64, out []float64) {
	row := make([]float64, len(m.features))
	for i := range row {
		row[i] = math.NaN()
	}
	copy(row, x)
	m.PredictRows(row, out[:1])
}

// PredictRows implements models.RowBatcher: the rows stored row-major in xs
// (stride len(Features()); a short last row is padded with NaN) run as one
// block, through the batcher when batching is on.
func (m *RowModel) PredictRows(xs []float64, out []float64) {
	w := len(m.features)
	n := (len(xs) + w - 1) / w
	n = min(n, len(out))
	if n == 0 {
		return
	}
	rows := make([][]float32, n)
	buf := make([]float32, n*w)
	for i := range rows {
		rows[i] = buf[i*w : (i+1)*w : (i+1)*w]
		for j := range rows[i] {
			if k := i*w + j; k < len(xs) {
				rows[i][j] = float32(xs[k])
			} else {
				rows[i][j] = float32(math.NaN())
			}
		}
	}
	res, err := m.s.do(context.Background(), rows)
	if err != nil {
		m.log.Error("onnx features model: run failed; predictions are NaN", "rows", n, "err", err)
		for i := range n {
			out[i] = math.NaN()
		}
		return
	}
	for i := range n {
		out[i] = float64(res[i][0])
	}
}

// Close stops the batcher, destroys the session and releases the runtime;
// later calls return the first call's result.
func (m *RowModel) Close() error {
	m.closeOnce.Do(func() { m.closeErr = errors.Join(m.s.close(), releaseEnv()) })
	return m.closeErr
}
