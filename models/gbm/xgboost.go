// Package gbm provides Go-native inference for gradient-boosted tree models
// trained elsewhere, without cgo: XGBoost JSON models (LoadXGBoostJSON), as
// written by Booster.save_model("model.json") in XGBoost 1.x to 3.x (gbtree
// and dart boosters, random forests via num_parallel_tree), and LightGBM text
// models (LoadLightGBM, headers v3 and v4). Trees are flattened into compact
// arrays; XGBoost ensembles no deeper than 10 levels are padded to perfect
// binary trees that are walked without branches, several trees (Predict) or
// rows (PredictBatch) in lockstep. XGBoost categorical splits, vector
// leaves, gblinear and UBJSON, and LightGBM linear trees are rejected with
// ErrUnsupportedModel.
//
// XGBoost arithmetic mirrors its CPU predictor: features and thresholds are
// compared as float32 and leaf values are summed in float32 in tree order, so
// predictions agree with XGBoost's own to about 1e-7.
package gbm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// XGBoost is a loaded XGBoost tree ensemble. It is immutable after loading and
// safe for concurrent use.
type XGBoost struct {
	objective    string
	transform    transform
	numFeatures  int
	numGroups    int // outputs per row: num_class for multi-class, else 1
	featureNames []string
	baseMargin   []float32 // per group, in margin space
	trees        []tree
	simple       bool // one group and every tree weight 1: one float32 sum
	rowLen       int  // row vector length: 2 × (largest split feature + 1)

	// Trees are stored in one of two layouts. When every tree is shallow
	// (depth <= maxPerfectDepth) each one is padded to a perfect binary tree
	// of the model's largest depth, so traversal is depth steps of
	// i = 2i+1+right with no leaf test and several trees (or rows) can be
	// walked in lockstep. Otherwise nodes holds the trees with adjacent
	// children.
	perfect bool
	depth   int       // perfect layout: every tree's depth
	splits  []split   // perfect layout: 2^depth-1 per tree, in heap order
	leaves  []float32 // perfect layout: 2^depth per tree
	nodes   []node    // general layout
}

// split is an internal node of the perfect layout. A padding node (below a
// leaf shallower than the model's depth) has identical subtrees, so its
// test does not matter.
type split struct {
	cond float32 // threshold: right when !(value < cond)
	slot uint32  // index into the row vector (see rowVector)
}

// tree is one flattened tree: its root in Model.nodes, the output group it
// adds to, and its weight (1 except for DART).
type tree struct {
	root   int32
	group  int32
	weight float32
}

// node is a flattened tree node. Children of a split are adjacent: the left
// child is at child, the right one at child+1. child == 0 marks a leaf (the
// root of a tree is never anyone's child), whose value is in cond.
type node struct {
	cond  float32 // split threshold, or the leaf value
	slot  uint32  // index into the row vector (see rowVector)
	child int32   // absolute index of the left child; 0 for a leaf
}

// maxFeatureIndex bounds feature indices so that row vector slots fit in a
// uint32.
const maxFeatureIndex = 1<<31 - 1

// transform is how an objective maps margins to outputs and base_score to a
// margin.
type transform int

const (
	identity    transform = iota // margin is the output
	logistic                     // sigmoid(margin); base_score is a probability
	expLink                      // exp(margin); base_score is a positive mean
	softmax                      // softmax over groups; base_score used as-is
	argmaxClass                  // multi:softmax: index of the largest margin
	hinge                        // binary:hinge: 1 if margin > 0 else 0
)

// objectives maps every supported XGBoost objective to its transform.
var objectives = map[string]transform{
	"reg:squarederror":     identity,
	"reg:squaredlogerror":  identity,
	"reg:pseudohubererror": identity,
	"reg:absoluteerror":    identity,
	"reg:linear":           identity, // pre-1.0 name of reg:squarederror
	"binary:logitraw":      identity,
	"rank:pairwise":        identity,
	"rank:ndcg":            identity,
	"rank:map":             identity,
	"reg:logistic":         logistic,
	"binary:logistic":      logistic,
	"count:poisson":        expLink,
	"reg:gamma":            expLink,
	"reg:tweedie":          expLink,
	"multi:softprob":       softmax,
	"multi:softmax":        argmaxClass,
	"binary:hinge":         hinge,
	"reg:quantileerror":    identity,
}

// maxNodes bounds the total number of nodes so a hostile file cannot make the
// loader allocate without limit beyond what it already decoded.
const maxNodes = 1 << 30

// Errors returned by LoadXGBoostJSON, wrapped with details; test with
// errors.Is.
var (
	// ErrInvalidModel reports a structurally broken model file.
	ErrInvalidModel = errors.New("gbm: invalid model")
	// ErrUnsupportedModel reports a well-formed model using a feature this
	// package does not implement (gblinear, categorical splits, vector leaves,
	// an unknown objective).
	ErrUnsupportedModel = errors.New("gbm: unsupported model")
)

// jsonModel is the part of XGBoost's JSON model schema we read.
type jsonModel struct {
	Version []int `json:"version"`
	Learner *struct {
		FeatureNames      []string `json:"feature_names"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		GradientBooster json.RawMessage `json:"gradient_booster"`
	} `json:"learner"`
}

type jsonBooster struct {
	Name       string          `json:"name"`
	Model      *jsonGBTree     `json:"model"`       // gbtree
	GBTree     json.RawMessage `json:"gbtree"`      // dart: nested gbtree booster
	WeightDrop []float64       `json:"weight_drop"` // dart
}

type jsonGBTree struct {
	Param struct {
		NumParallelTree string `json:"num_parallel_tree"`
		NumTrees        string `json:"num_trees"`
	} `json:"gbtree_model_param"`
	Trees    []jsonTree `json:"trees"`
	TreeInfo []int      `json:"tree_info"`
}

type jsonTree struct {
	Param struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	LeftChildren    []int      `json:"left_children"`
	RightChildren   []int      `json:"right_children"`
	SplitIndices    []int64    `json:"split_indices"`
	SplitConditions []float64  `json:"split_conditions"`
	DefaultLeft     []flexBool `json:"default_left"`
	SplitType       []int      `json:"split_type"`
}

// flexBool decodes default_left entries, which are 0/1 in some XGBoost
// versions and true/false in others.
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *flexBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "true", "1":
		*b = true
	case "false", "0":
		*b = false
	default:
		return fmt.Errorf("default_left: want 0, 1, true or false, got %s", p)
	}
	return nil
}

// LoadXGBoostJSON reads an XGBoost JSON model (Booster.save_model with a .json
// name; UBJSON is not supported) and validates it completely: every child and
// feature index, the tree shape (no cycles or shared nodes), finite
// thresholds and leaves, and the objective. It never panics on bad input.
func LoadXGBoostJSON(r io.Reader) (*XGBoost, error) {
	m, err := loadGeneral(r)
	if err != nil {
		return nil, err
	}
	m.buildPerfect()
	return m, nil
}

// loadGeneral is LoadXGBoostJSON keeping the general layout.
func loadGeneral(r io.Reader) (*XGBoost, error) {
	var jm jsonModel
	if err := json.NewDecoder(r).Decode(&jm); err != nil {
		return nil, fmt.Errorf("%w: decode json: %v", ErrInvalidModel, err)
	}
	if jm.Learner == nil {
		return nil, fmt.Errorf("%w: no learner object", ErrInvalidModel)
	}
	l := jm.Learner
	m := &XGBoost{objective: l.Objective.Name}
	tf, ok := objectives[m.objective]
	if !ok {
		return nil, fmt.Errorf("%w: objective %q", ErrUnsupportedModel, m.objective)
	}
	m.transform = tf

	p := l.LearnerModelParam
	numClass, err := paramInt("num_class", p.NumClass, 0)
	if err != nil {
		return nil, err
	}
	numTarget, err := paramInt("num_target", p.NumTarget, 1)
	if err != nil {
		return nil, err
	}
	if numTarget > 1 {
		return nil, fmt.Errorf("%w: num_target %d (multi-target models)", ErrUnsupportedModel, numTarget)
	}
	numFeature, err := paramInt("num_feature", p.NumFeature, 0)
	if err != nil {
		return nil, err
	}
	m.numFeatures = numFeature
	m.numGroups = max(numClass, 1)
	if (tf == softmax || tf == argmaxClass) != (numClass > 1) {
		return nil, fmt.Errorf("%w: objective %s with num_class %d", ErrInvalidModel, m.objective, numClass)
	}
	if m.numGroups > 1<<16 {
		return nil, fmt.Errorf("%w: num_class %d too large", ErrInvalidModel, numClass)
	}
	if err := m.setBaseScore(p.BaseScore); err != nil {
		return nil, err
	}
	if len(l.FeatureNames) > 0 {
		if numFeature != 0 && len(l.FeatureNames) != numFeature {
			return nil, fmt.Errorf("%w: %d feature_names but num_feature %d", ErrInvalidModel, len(l.FeatureNames), numFeature)
		}
		m.featureNames = append([]string(nil), l.FeatureNames...)
		if m.numFeatures == 0 {
			m.numFeatures = len(l.FeatureNames)
		}
	}
	if err := m.loadBooster(l.GradientBooster); err != nil {
		return nil, err
	}
	return m, nil
}

func paramInt(name, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: learner_model_param.%s %q: want a non-negative integer", ErrInvalidModel, name, s)
	}
	return n, nil
}

// setBaseScore parses base_score (output space; "5E-1" in 1.x/2.x, "[5E-1]" or
// one value per class in 3.x) and converts it to a margin per group.
func (m *XGBoost) setBaseScore(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		s = "0.5" // XGBoost's default
	}
	var vals []float64
	if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") {
			return fmt.Errorf("%w: base_score %q", ErrInvalidModel, s)
		}
		for _, f := range strings.Split(s[1:len(s)-1], ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return fmt.Errorf("%w: base_score %q", ErrInvalidModel, s)
			}
			vals = append(vals, v)
		}
	} else {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%w: base_score %q", ErrInvalidModel, s)
		}
		vals = []float64{v}
	}
	if len(vals) != 1 && len(vals) != m.numGroups {
		return fmt.Errorf("%w: base_score has %d values for %d outputs", ErrInvalidModel, len(vals), m.numGroups)
	}
	m.baseMargin = make([]float32, m.numGroups)
	for g := range m.baseMargin {
		v := vals[0]
		if len(vals) > 1 {
			v = vals[g]
		}
		margin, err := m.toMargin(v)
		if err != nil {
			return err
		}
		m.baseMargin[g] = float32(margin)
	}
	return nil
}

// toMargin is XGBoost's ObjFunction::ProbToMargin. Multi-class objectives
// apply base_score as a margin unchanged (XGBoost 1.x to 3.1 do so).
func (m *XGBoost) toMargin(v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: base_score %v", ErrInvalidModel, v)
	}
	switch m.transform {
	case logistic:
		if v <= 0 || v >= 1 {
			return 0, fmt.Errorf("%w: base_score %v must be in (0,1) for %s", ErrInvalidModel, v, m.objective)
		}
		return float64(-float32(math.Log(float64(1/float32(v) - 1)))), nil
	case expLink:
		if v <= 0 {
			return 0, fmt.Errorf("%w: base_score %v must be positive for %s", ErrInvalidModel, v, m.objective)
		}
		return math.Log(v), nil
	}
	return v, nil
}

func (m *XGBoost) loadBooster(raw json.RawMessage) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: no gradient_booster", ErrInvalidModel)
	}
	var b jsonBooster
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("%w: gradient_booster: %v", ErrInvalidModel, err)
	}
	switch b.Name {
	case "gbtree":
		if b.Model == nil {
			return fmt.Errorf("%w: gbtree without model", ErrInvalidModel)
		}
		return m.loadTrees(b.Model, nil)
	case "dart":
		var inner jsonBooster
		if err := json.Unmarshal(b.GBTree, &inner); err != nil || inner.Model == nil {
			return fmt.Errorf("%w: dart without gbtree model", ErrInvalidModel)
		}
		if len(b.WeightDrop) != len(inner.Model.Trees) {
			return fmt.Errorf("%w: dart has %d weights for %d trees", ErrInvalidModel, len(b.WeightDrop), len(inner.Model.Trees))
		}
		return m.loadTrees(inner.Model, b.WeightDrop)
	default:
		return fmt.Errorf("%w: booster %q (want gbtree or dart)", ErrUnsupportedModel, b.Name)
	}
}

func (m *XGBoost) loadTrees(g *jsonGBTree, weights []float64) error {
	if n := g.Param.NumTrees; n != "" {
		nt, err := strconv.Atoi(n)
		if err != nil || nt != len(g.Trees) {
			return fmt.Errorf("%w: num_trees %q but %d trees", ErrInvalidModel, n, len(g.Trees))
		}
	}
	if n := g.Param.NumParallelTree; n != "" {
		if npt, err := strconv.Atoi(n); err != nil || npt < 1 {
			return fmt.Errorf("%w: num_parallel_tree %q", ErrInvalidModel, n)
		}
		// Trees of one round are summed like all others, so
		// num_parallel_tree needs no special handling at full prediction.
	}
	if len(g.TreeInfo) != len(g.Trees) {
		return fmt.Errorf("%w: tree_info has %d entries for %d trees", ErrInvalidModel, len(g.TreeInfo), len(g.Trees))
	}
	m.trees = make([]tree, len(g.Trees))
	maxFeat := -1
	for i := range g.Trees {
		grp := g.TreeInfo[i]
		if grp < 0 || grp >= m.numGroups {
			return fmt.Errorf("%w: tree %d: tree_info group %d out of range [0,%d)", ErrInvalidModel, i, grp, m.numGroups)
		}
		w := 1.0
		if weights != nil {
			w = weights[i]
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return fmt.Errorf("%w: tree %d: weight_drop %v", ErrInvalidModel, i, w)
			}
		}
		root, mf, err := m.flatten(&g.Trees[i])
		if err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
		maxFeat = max(maxFeat, mf)
		m.trees[i] = tree{root: root, group: int32(grp), weight: float32(w)}
		g.Trees[i] = jsonTree{} // let the decoded arrays go early
	}
	if m.numFeatures == 0 {
		m.numFeatures = maxFeat + 1
	}
	m.rowLen = 2 * (maxFeat + 1)
	m.simple = m.numGroups == 1
	for _, t := range m.trees {
		if t.weight != 1 {
			m.simple = false
		}
	}
	return nil
}

// flatten validates t and appends its reachable nodes to m.nodes in
// breadth-first order, so that siblings are adjacent. It returns the root's
// index and the largest feature index used.
func (m *XGBoost) flatten(t *jsonTree) (root int32, maxFeat int, err error) {
	n := len(t.LeftChildren)
	if n == 0 {
		return 0, 0, fmt.Errorf("%w: no nodes", ErrInvalidModel)
	}
	if len(t.RightChildren) != n || len(t.SplitIndices) != n || len(t.SplitConditions) != n || len(t.DefaultLeft) != n {
		return 0, 0, fmt.Errorf("%w: node arrays differ in length", ErrInvalidModel)
	}
	if t.SplitType != nil && len(t.SplitType) != n {
		return 0, 0, fmt.Errorf("%w: split_type length %d, want %d", ErrInvalidModel, len(t.SplitType), n)
	}
	if s := t.Param.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return 0, 0, fmt.Errorf("%w: size_leaf_vector %s (vector leaves)", ErrUnsupportedModel, s)
	}
	if len(m.nodes)+n > maxNodes {
		return 0, 0, fmt.Errorf("%w: too many nodes", ErrInvalidModel)
	}
	maxFeat = -1
	base := int32(len(m.nodes))
	seen := make([]bool, n)
	queue := []int{0} // original ids, in output order
	seen[0] = true
	for head := 0; head < len(queue); head++ {
		id := queue[head]
		l, r := t.LeftChildren[id], t.RightChildren[id]
		cond := t.SplitConditions[id]
		if math.IsNaN(cond) || math.IsInf(cond, 0) || math.Abs(cond) > math.MaxFloat32 {
			return 0, 0, fmt.Errorf("%w: node %d: non-finite split condition or leaf value %v", ErrInvalidModel, id, cond)
		}
		nd := node{cond: float32(cond)}
		if l == -1 && r == -1 {
			m.nodes = append(m.nodes, nd)
			continue
		}
		if l < 0 || l >= n || r < 0 || r >= n || l == r {
			return 0, 0, fmt.Errorf("%w: node %d: children %d, %d out of range [0,%d)", ErrInvalidModel, id, l, r, n)
		}
		if seen[l] || seen[r] {
			return 0, 0, fmt.Errorf("%w: node %d: child reached twice (cycle or shared node)", ErrInvalidModel, id)
		}
		if t.SplitType != nil && t.SplitType[id] != 0 {
			return 0, 0, fmt.Errorf("%w: node %d: categorical split", ErrUnsupportedModel, id)
		}
		f := t.SplitIndices[id]
		if f < 0 || f >= maxFeatureIndex || (m.numFeatures > 0 && f >= int64(m.numFeatures)) {
			return 0, 0, fmt.Errorf("%w: node %d: feature index %d out of range [0,%d)", ErrInvalidModel, id, f, m.numFeatures)
		}
		maxFeat = max(maxFeat, int(f))
		seen[l], seen[r] = true, true
		nd.slot = slotOf(f, bool(t.DefaultLeft[id]))
		nd.child = base + int32(len(queue))
		queue = append(queue, l, r)
		m.nodes = append(m.nodes, nd)
	}
	return base, maxFeat, nil
}

// NumFeatures is the number of input features the model expects.
func (m *XGBoost) NumFeatures() int { return m.numFeatures }

// NumOutputs is the length of PredictMulti's output: num_class for
// multi:softprob and 1 otherwise.
func (m *XGBoost) NumOutputs() int {
	if m.transform == softmax {
		return m.numGroups
	}
	return 1
}

// NumTrees is the number of trees in the ensemble.
func (m *XGBoost) NumTrees() int { return len(m.trees) }

// FeatureNames returns the feature names stored in the model, or nil when it
// has none. The slice must not be modified.
func (m *XGBoost) FeatureNames() []string { return m.featureNames }

// Objective is the XGBoost objective name, such as "binary:logistic".
func (m *XGBoost) Objective() string { return m.objective }

// slotOf is the row vector slot a split on feature f reads: 2f when missing
// values go left, 2f+1 when they go right.
func slotOf(f int64, defaultLeft bool) uint32 {
	s := uint32(2 * f)
	if !defaultLeft {
		s++
	}
	return s
}

// rowVector converts row x to what traversal reads, once per row: two
// float32 slots per feature split on (len(xf) == m.rowLen). A present value
// is in both slots; a missing one (NaN, or beyond len(x)) is -Inf in slot 2f,
// read by splits whose missing values go left, and +Inf in slot 2f+1, read
// by splits whose missing values go right. A split goes right when
// !(value < cond), XGBoost's test on float32 values; thresholds are finite,
// so -Inf always goes left and +Inf always right, and since no slot holds
// NaN the test is the plain comparison value >= cond with no missing-value
// branch.
func rowVector(x []float64, xf []float32) {
	nf := len(xf) / 2
	n := min(len(x), nf)
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	xf = xf[:2*nf]
	for f, v := range x[:n] {
		if v == v {
			xf[2*f], xf[2*f+1] = float32(v), float32(v)
		} else {
			xf[2*f], xf[2*f+1] = lo, hi
		}
	}
	for f := n; f < nf; f++ {
		xf[2*f], xf[2*f+1] = lo, hi
	}
}

// right is 1 when value v goes right at threshold cond, else 0. It compiles
// to a flag set, not a branch.
func right(v, cond float32) int {
	var r int
	if v >= cond {
		r = 1
	}
	return r
}

// maxPerfectDepth is the deepest model stored in the perfect layout
// (2^10-1 splits and 2^10 leaves per tree, 12 KiB).
const maxPerfectDepth = 10

// buildPerfect switches the model to the perfect layout when every tree is
// at most maxPerfectDepth deep and padding does not make the model much
// larger than its nodes.
func (m *XGBoost) buildPerfect() {
	depth := 0
	var level []int32
	for t, tr := range m.trees {
		end := len(m.nodes)
		if t+1 < len(m.trees) {
			end = int(m.trees[t+1].root)
		}
		// Nodes are in breadth-first order, so parents precede children.
		level = append(level[:0], make([]int32, end-int(tr.root))...)
		for i := int(tr.root); i < end; i++ {
			d := level[i-int(tr.root)]
			depth = max(depth, int(d))
			if depth > maxPerfectDepth {
				return
			}
			if c := m.nodes[i].child; c != 0 {
				level[int(c)-int(tr.root)] = d + 1
				level[int(c)+1-int(tr.root)] = d + 1
			}
		}
	}
	ns, nl := 1<<depth-1, 1<<depth
	if size := len(m.trees) * (8*ns + 4*nl); size > 4*12*len(m.nodes)+1<<20 {
		return
	}
	m.splits = make([]split, len(m.trees)*ns)
	m.leaves = make([]float32, len(m.trees)*nl)
	for t, tr := range m.trees {
		m.fillPerfect(m.splits[t*ns:(t+1)*ns], m.leaves[t*nl:(t+1)*nl], 0, depth, tr.root)
	}
	m.perfect, m.depth, m.nodes = true, depth, nil
}

// fillPerfect stores the subtree at node n at heap position h, depth levels
// above the leaves.
func (m *XGBoost) fillPerfect(splits []split, leaves []float32, h, depth int, n int32) {
	if depth == 0 {
		leaves[h-len(splits)] = m.nodes[n].cond
		return
	}
	nd := m.nodes[n]
	if nd.child == 0 { // a shallow leaf: pad with a split whose sides agree
		splits[h] = split{}
		m.fillPerfect(splits, leaves, 2*h+1, depth-1, n)
		m.fillPerfect(splits, leaves, 2*h+2, depth-1, n)
		return
	}
	splits[h] = split{cond: nd.cond, slot: nd.slot}
	m.fillPerfect(splits, leaves, 2*h+1, depth-1, nd.child)
	m.fillPerfect(splits, leaves, 2*h+2, depth-1, nd.child+1)
}

// leaf walks tree tr of the general layout for row vector xf.
func (m *XGBoost) leaf(tr *tree, xf []float32) float32 {
	nodes := m.nodes
	i := tr.root
	for {
		nd := &nodes[i]
		if nd.child == 0 {
			return nd.cond
		}
		i = nd.child + int32(right(xf[nd.slot], nd.cond))
	}
}

// add adds tree t's leaf value v to margins out, as XGBoost does: scaled by
// the tree's weight, in float32.
func (m *XGBoost) add(out []float32, t int, v float32) {
	tr := &m.trees[t]
	out[tr.group] += float32(v * tr.weight)
}

// rowBuf is the largest row vector Predict keeps on the stack (models
// splitting on features 0 to 127).
const rowBuf = 256

// scratch is PredictBatch's and wide models' working memory.
type scratch struct {
	xf  []float32
	acc []float32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch(nx, nacc int) *scratch {
	s := scratchPool.Get().(*scratch)
	if cap(s.xf) < nx {
		s.xf = make([]float32, nx)
	}
	if cap(s.acc) < nacc {
		s.acc = make([]float32, nacc)
	}
	s.xf, s.acc = s.xf[:nx], s.acc[:nacc]
	return s
}

// margins sets out (len numGroups) to row x's margins: the base margins plus
// every tree's leaf, summed in float32 in tree order.
func (m *XGBoost) margins(x []float64, out []float32) {
	n := m.rowLen
	if n <= rowBuf {
		var buf [rowBuf]float32
		xf := buf[:n]
		rowVector(x, xf)
		m.rowMargins(xf, out)
		return
	}
	s := getScratch(n, 0)
	rowVector(x, s.xf)
	m.rowMargins(s.xf, out)
	scratchPool.Put(s)
}

// rowMargins sets out to the margins of the row with vector xf.
func (m *XGBoost) rowMargins(xf []float32, out []float32) {
	copy(out, m.baseMargin)
	if !m.perfect {
		for t := range m.trees {
			v := m.leaf(&m.trees[t], xf)
			if m.simple {
				out[0] += v
			} else {
				m.add(out, t, v)
			}
		}
		return
	}
	// Eight trees at a time in lockstep: their walks are independent, so
	// the processor overlaps their loads instead of waiting on each in turn.
	depth := m.depth
	ns, nl := 1<<depth-1, 1<<depth
	splits, leaves := m.splits, m.leaves
	nt := len(m.trees)
	acc := out[0]
	t := 0
	for ; t+8 <= nt; t += 8 {
		b := t * ns
		var i0, i1, i2, i3, i4, i5, i6, i7 int
		for range depth {
			s0, s1, s2, s3 := &splits[b+i0], &splits[b+ns+i1], &splits[b+2*ns+i2], &splits[b+3*ns+i3]
			s4, s5, s6, s7 := &splits[b+4*ns+i4], &splits[b+5*ns+i5], &splits[b+6*ns+i6], &splits[b+7*ns+i7]
			i0 = 2*i0 + 1 + right(xf[s0.slot], s0.cond)
			i1 = 2*i1 + 1 + right(xf[s1.slot], s1.cond)
			i2 = 2*i2 + 1 + right(xf[s2.slot], s2.cond)
			i3 = 2*i3 + 1 + right(xf[s3.slot], s3.cond)
			i4 = 2*i4 + 1 + right(xf[s4.slot], s4.cond)
			i5 = 2*i5 + 1 + right(xf[s5.slot], s5.cond)
			i6 = 2*i6 + 1 + right(xf[s6.slot], s6.cond)
			i7 = 2*i7 + 1 + right(xf[s7.slot], s7.cond)
		}
		lv := leaves[t*nl : (t+8)*nl]
		for k, i := range [8]int{i0, i1, i2, i3, i4, i5, i6, i7} {
			v := lv[k*nl+i-ns]
			if m.simple {
				acc += v
			} else {
				m.add(out, t+k, v)
			}
		}
	}
	for ; t < nt; t++ {
		b := t * ns
		i := 0
		for range depth {
			s := &splits[b+i]
			i = 2*i + 1 + right(xf[s.slot], s.cond)
		}
		v := leaves[t*nl-ns+i]
		if m.simple {
			acc += v
		} else {
			m.add(out, t, v)
		}
	}
	if m.simple {
		out[0] = acc
	}
}

// blockMargins adds every tree's leaves to acc for a block of rows: xf
// holds the rows' vectors (stride m.rowLen) and acc their margins (stride
// numGroups, starting at the base margins). The loop is tree-major, so one
// tree's nodes stay in cache for the whole block, and in the perfect layout
// eight rows walk the tree in lockstep. Every row still sums its leaves in
// tree order.
func (m *XGBoost) blockMargins(xf []float32, acc []float32, rows int) {
	stride, ng := m.rowLen, m.numGroups
	if !m.perfect {
		for t := range m.trees {
			for r := range rows {
				v := m.leaf(&m.trees[t], xf[r*stride:(r+1)*stride])
				if m.simple {
					acc[r] += v
				} else {
					m.add(acc[r*ng:(r+1)*ng], t, v)
				}
			}
		}
		return
	}
	depth := m.depth
	ns, nl := 1<<depth-1, 1<<depth
	for t := range m.trees {
		sp := m.splits[t*ns : (t+1)*ns]
		lv := m.leaves[t*nl : (t+1)*nl]
		r := 0
		for ; r+8 <= rows; r += 8 {
			o := r * stride
			x0 := xf[o : o+stride]
			x1 := xf[o+stride : o+2*stride]
			x2 := xf[o+2*stride : o+3*stride]
			x3 := xf[o+3*stride : o+4*stride]
			x4 := xf[o+4*stride : o+5*stride]
			x5 := xf[o+5*stride : o+6*stride]
			x6 := xf[o+6*stride : o+7*stride]
			x7 := xf[o+7*stride : o+8*stride]
			var i0, i1, i2, i3, i4, i5, i6, i7 int
			for range depth {
				s0, s1, s2, s3 := &sp[i0], &sp[i1], &sp[i2], &sp[i3]
				s4, s5, s6, s7 := &sp[i4], &sp[i5], &sp[i6], &sp[i7]
				i0 = 2*i0 + 1 + right(x0[s0.slot], s0.cond)
				i1 = 2*i1 + 1 + right(x1[s1.slot], s1.cond)
				i2 = 2*i2 + 1 + right(x2[s2.slot], s2.cond)
				i3 = 2*i3 + 1 + right(x3[s3.slot], s3.cond)
				i4 = 2*i4 + 1 + right(x4[s4.slot], s4.cond)
				i5 = 2*i5 + 1 + right(x5[s5.slot], s5.cond)
				i6 = 2*i6 + 1 + right(x6[s6.slot], s6.cond)
				i7 = 2*i7 + 1 + right(x7[s7.slot], s7.cond)
			}
			if m.simple {
				acc[r] += lv[i0-ns]
				acc[r+1] += lv[i1-ns]
				acc[r+2] += lv[i2-ns]
				acc[r+3] += lv[i3-ns]
				acc[r+4] += lv[i4-ns]
				acc[r+5] += lv[i5-ns]
				acc[r+6] += lv[i6-ns]
				acc[r+7] += lv[i7-ns]
			} else {
				for k, i := range [8]int{i0, i1, i2, i3, i4, i5, i6, i7} {
					m.add(acc[(r+k)*ng:(r+k+1)*ng], t, lv[i-ns])
				}
			}
		}
		for ; r < rows; r++ {
			x := xf[r*stride : (r+1)*stride]
			i := 0
			for range depth {
				s := &sp[i]
				i = 2*i + 1 + right(x[s.slot], s.cond)
			}
			if m.simple {
				acc[r] += lv[i-ns]
			} else {
				m.add(acc[r*ng:(r+1)*ng], t, lv[i-ns])
			}
		}
	}
}

// PredictMargin returns the raw score (before the objective's link) of a
// single-output model for row x, as XGBoost's output_margin=True. NaN marks a
// missing value, as do features beyond len(x). It returns NaN for a
// multi-class model.
func (m *XGBoost) PredictMargin(x []float64) float64 {
	if m.numGroups != 1 {
		return math.NaN()
	}
	var out [1]float32
	m.margins(x, out[:])
	return float64(out[0])
}

// Predict returns the prediction of a single-output model for row x, in the
// objective's output space (a probability for binary:logistic, the value for
// reg:squarederror, the class index for multi:softmax). NaN marks a missing
// value, as do features beyond len(x). It returns NaN for multi:softprob
// models; use PredictMulti.
func (m *XGBoost) Predict(x []float64) float64 {
	if m.transform == softmax {
		return math.NaN()
	}
	var buf [16]float32
	var mg []float32
	if m.numGroups <= len(buf) {
		mg = buf[:m.numGroups]
	} else {
		mg = make([]float32, m.numGroups)
	}
	m.margins(x, mg)
	return m.output(mg)
}

// output is the single output of a model that is not multi:softprob, from
// its margins.
func (m *XGBoost) output(mg []float32) float64 {
	if m.transform == argmaxClass {
		best := 0
		for g, v := range mg {
			if v > mg[best] {
				best = g
			}
		}
		return float64(best)
	}
	return m.link(mg[0])
}

func (m *XGBoost) link(v float32) float64 {
	switch m.transform {
	case logistic:
		return float64(float32(1 / (1 + math.Exp(-float64(v)))))
	case expLink:
		return float64(float32(math.Exp(float64(v))))
	case hinge:
		if v > 0 {
			return 1
		}
		return 0
	}
	return float64(v)
}

// PredictMulti writes the prediction for row x to out, which should have
// NumOutputs() elements: class probabilities for multi:softprob, the single
// Predict value otherwise. NaN marks a missing value, as do features beyond
// len(x). If out is shorter only its elements are written; elements beyond
// NumOutputs() are set to NaN.
func (m *XGBoost) PredictMulti(x []float64, out []float64) {
	no := m.NumOutputs()
	for i := no; i < len(out); i++ {
		out[i] = math.NaN()
	}
	if len(out) == 0 {
		return
	}
	if m.transform != softmax {
		out[0] = m.Predict(x)
		return
	}
	var buf [16]float32
	var mg []float32
	if m.numGroups <= len(buf) {
		mg = buf[:m.numGroups]
	} else {
		mg = make([]float32, m.numGroups)
	}
	m.margins(x, mg)
	m.softmax(mg, out)
}

// softmax writes the class probabilities for margins mg to out (at most
// NumOutputs() elements), as XGBoost computes them: subtract the maximum,
// exponentiate and normalise in float32. It overwrites mg.
func (m *XGBoost) softmax(mg []float32, out []float64) {
	hi := mg[0]
	for _, v := range mg {
		hi = max(hi, v)
	}
	var sum float32
	for g, v := range mg {
		e := float32(math.Exp(float64(v - hi)))
		mg[g] = e
		sum += e
	}
	for g := range min(len(out), len(mg)) {
		out[g] = float64(mg[g] / sum)
	}
}

// blockRows is how many rows PredictBatch walks through each tree at once:
// 64 rows of 30 features are 15 KiB of row vectors, which stay in the L1
// cache with the tree.
const blockRows = 64

// PredictBatch predicts rows stored row-major in xs, stride NumFeatures(),
// writing NumOutputs() values per row to out. len(xs) must be a multiple of
// NumFeatures() and out must have room for every row. Results equal
// PredictMulti's row by row; blocks of rows are walked through each tree
// together, which is faster than predicting row by row.
func (m *XGBoost) PredictBatch(xs []float64, out []float64) error {
	nf, no, ng := m.numFeatures, m.NumOutputs(), m.numGroups
	if nf == 0 {
		return errors.New("PredictBatch: model has no features")
	}
	if len(xs)%nf != 0 {
		return fmt.Errorf("PredictBatch: %d values is not a multiple of %d features", len(xs), nf)
	}
	rows := len(xs) / nf
	if len(out) != rows*no {
		return fmt.Errorf("PredictBatch: out has %d elements, want %d", len(out), rows*no)
	}
	block, rl := min(rows, blockRows), m.rowLen
	s := getScratch(block*rl, block*ng)
	defer scratchPool.Put(s)
	for r0 := 0; r0 < rows; r0 += block {
		n := min(block, rows-r0)
		for r := range n {
			rowVector(xs[(r0+r)*nf:(r0+r+1)*nf], s.xf[r*rl:(r+1)*rl])
			copy(s.acc[r*ng:(r+1)*ng], m.baseMargin)
		}
		m.blockMargins(s.xf, s.acc, n)
		for r := range n {
			mg := s.acc[r*ng : (r+1)*ng]
			if no == 1 {
				out[r0+r] = m.output(mg)
			} else {
				m.softmax(mg, out[(r0+r)*no:(r0+r+1)*no])
			}
		}
	}
	return nil
}
