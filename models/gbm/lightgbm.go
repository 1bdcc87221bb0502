package gbm

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// LightGBM is a loaded LightGBM tree ensemble (a text model written by
// Booster.save_model, header version=v3 or v4). It is immutable after loading
// and safe for concurrent use.
//
// Arithmetic mirrors LightGBM's Tree::Predict and GBDT::Predict: features
// and thresholds are compared as float64 and leaf values are summed in
// float64 in tree order. Shrinkage is already folded into the stored leaf
// values and the initial score into the first trees, so neither is applied
// again.
type LightGBM struct {
	objective    string // objective line as written, e.g. "binary sigmoid:1"
	transform    transform
	sigmoid      float64 // binary: sigmoid(sigmoid*margin)
	numFeatures  int
	numGroups    int // num_tree_per_iteration: outputs per row
	featureNames []string
	average      bool // average_output: divide sums by the iteration count
	numIter      int
	trees        []lgbTree
	catBits      []uint32 // every tree's categorical bitsets, concatenated
}

// lgbTree is one LightGBM tree. A tree with a single leaf has no nodes.
type lgbTree struct {
	nodes  []lgbNode
	leaves []float64
}

// lgbNode is an internal node. A child c >= 0 is the node at index c; c < 0
// is the leaf ^c.
type lgbNode struct {
	threshold    float64 // numeric splits only
	feature      int32
	left, right  int32
	decision     uint8 // LightGBM decision_type
	catLo, catHi int32 // categorical splits: bitset words catBits[catLo:catHi]
}

// LightGBM decision_type bits (tree.h kCategoricalMask, kDefaultLeftMask and
// the missing type in bits 2-3).
const (
	lgbCategorical = 1
	lgbDefaultLeft = 2
	lgbMissingNone = 0
	lgbMissingZero = 1
	lgbMissingNaN  = 2
)

// lgbZeroThreshold is LightGBM's kZeroThreshold (1e-35f) as a double.
var lgbZeroThreshold = float64(float32(1e-35))

// lgbObjectives maps LightGBM objective names, as written in model files, to
// their output transform. Objectives with extra parameters that change the
// output (binary sigmoid:X, multiclass num_class:K) are handled in
// parseObjective.
var lgbObjectives = map[string]transform{
	"regression":    identity,
	"regression_l2": identity,
	"regression_l1": identity,
	"l1":            identity,
	"l2":            identity,
	"huber":         identity,
	"fair":          identity,
	"quantile":      identity,
	"mape":          identity,
	"lambdarank":    identity,
	"rank_xendcg":   identity,
	"poisson":       expLink,
	"gamma":         expLink,
	"tweedie":       expLink,
	"binary":        logistic,
	"cross_entropy": logistic,
	"multiclass":    softmax,
}

// Limits that keep a hostile file from making the loader allocate without
// bound beyond the text it already read.
const (
	lgbMaxLine   = 1 << 30
	lgbMaxLeaves = 1 << 24
	lgbMaxGroups = 1 << 16
)

// LoadLightGBM reads a LightGBM text model (the format of
// Booster.save_model / model_to_string, header version=v3 or v4) and
// validates it completely: header counts, every array length, child, feature
// and category index, the tree shape (no cycles or shared nodes), finite
// thresholds and leaves, and the objective. Linear trees, multiclassova,
// regression with sqrt and other objectives not listed in the package are
// rejected with ErrUnsupportedModel; broken files with ErrInvalidModel. It
// never panics on bad input.
func LoadLightGBM(r io.Reader) (*LightGBM, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), lgbMaxLine)
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return strings.TrimRight(sc.Text(), "\r"), true
	}

	// Header: "tree", then key=value lines up to the first "Tree=".
	first, ok := next()
	for ok && strings.TrimSpace(first) == "" {
		first, ok = next()
	}
	if !ok || first != "tree" {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: lightgbm: read: %v", ErrInvalidModel, err)
		}
		return nil, fmt.Errorf("%w: lightgbm: first line must be \"tree\"", ErrInvalidModel)
	}
	header := map[string]string{}
	var s string
	for {
		s, ok = next()
		if !ok || strings.HasPrefix(s, "Tree=") || s == "end of trees" {
			break
		}
		if s == "" {
			continue
		}
		k, v, _ := strings.Cut(s, "=")
		header[k] = v
	}
	m := &LightGBM{}
	if err := m.parseHeader(header); err != nil {
		return nil, err
	}

	// Trees, each a "Tree=i" line followed by key=value lines, until
	// "end of trees".
	for ok && strings.HasPrefix(s, "Tree=") {
		idx := len(m.trees)
		if n, err := strconv.Atoi(s[len("Tree="):]); err != nil || n != idx {
			return nil, fmt.Errorf("%w: lightgbm: line %d: %q, want Tree=%d", ErrInvalidModel, line, s, idx)
		}
		kv := map[string]string{}
		for {
			s, ok = next()
			if !ok || strings.HasPrefix(s, "Tree=") || s == "end of trees" {
				break
			}
			if s == "" {
				continue
			}
			k, v, found := strings.Cut(s, "=")
			if !found {
				return nil, fmt.Errorf("%w: lightgbm: tree %d: line %d: want key=value", ErrInvalidModel, idx, line)
			}
			kv[k] = v
		}
		t, err := m.parseTree(kv)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", idx, err)
		}
		m.trees = append(m.trees, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: lightgbm: read: %v", ErrInvalidModel, err)
	}
	if !ok || s != "end of trees" {
		return nil, fmt.Errorf("%w: lightgbm: no \"end of trees\" line (truncated file?)", ErrInvalidModel)
	}
	if len(m.trees) == 0 {
		return nil, fmt.Errorf("%w: lightgbm: no trees", ErrInvalidModel)
	}
	if len(m.trees)%m.numGroups != 0 {
		return nil, fmt.Errorf("%w: lightgbm: %d trees is not a multiple of num_tree_per_iteration %d", ErrInvalidModel, len(m.trees), m.numGroups)
	}
	m.numIter = len(m.trees) / m.numGroups
	return m, nil
}

func lgbHeaderInt(h map[string]string, key string, def int, required bool) (int, error) {
	s, ok := h[key]
	if !ok {
		if required {
			return 0, fmt.Errorf("%w: lightgbm: no %s", ErrInvalidModel, key)
		}
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: lightgbm: %s=%q: want an integer", ErrInvalidModel, key, s)
	}
	return n, nil
}

func (m *LightGBM) parseHeader(h map[string]string) error {
	switch v, ok := h["version"]; {
	case !ok:
		return fmt.Errorf("%w: lightgbm: header has no version", ErrInvalidModel)
	case v != "v3" && v != "v4":
		return fmt.Errorf("%w: lightgbm: version %q (want v3 or v4)", ErrUnsupportedModel, v)
	}
	numClass, err := lgbHeaderInt(h, "num_class", 0, true)
	if err != nil {
		return err
	}
	if numClass < 1 || numClass > lgbMaxGroups {
		return fmt.Errorf("%w: lightgbm: num_class %d out of range [1,%d]", ErrInvalidModel, numClass, lgbMaxGroups)
	}
	ntpi, err := lgbHeaderInt(h, "num_tree_per_iteration", numClass, false)
	if err != nil {
		return err
	}
	if ntpi < 1 || ntpi > lgbMaxGroups {
		return fmt.Errorf("%w: lightgbm: num_tree_per_iteration %d out of range [1,%d]", ErrInvalidModel, ntpi, lgbMaxGroups)
	}
	m.numGroups = ntpi
	maxFeat, err := lgbHeaderInt(h, "max_feature_idx", 0, true)
	if err != nil {
		return err
	}
	if maxFeat < -1 || maxFeat >= math.MaxInt32 {
		return fmt.Errorf("%w: lightgbm: max_feature_idx %d", ErrInvalidModel, maxFeat)
	}
	m.numFeatures = maxFeat + 1
	if names, ok := h["feature_names"]; ok && (names != "" || m.numFeatures > 0) {
		f := strings.Split(names, " ")
		if len(f) != m.numFeatures {
			return fmt.Errorf("%w: lightgbm: %d feature_names but max_feature_idx %d", ErrInvalidModel, len(f), maxFeat)
		}
		m.featureNames = f
	}
	_, m.average = h["average_output"]
	return m.parseObjective(h["objective"], numClass)
}

// parseObjective reads the objective line: a name followed by
// space-separated name:value parameters (binary sigmoid:1, multiclass
// num_class:3). A model without one (a custom objective) outputs margins.
func (m *LightGBM) parseObjective(obj string, numClass int) error {
	m.objective = obj
	fields := strings.Fields(obj)
	if len(fields) == 0 {
		m.transform = identity
	} else {
		tf, ok := lgbObjectives[fields[0]]
		if !ok {
			return fmt.Errorf("%w: lightgbm: objective %q", ErrUnsupportedModel, obj)
		}
		m.transform = tf
	}
	m.sigmoid = 1
	objClass := 0
	for _, p := range fields[min(1, len(fields)):] {
		k, v, _ := strings.Cut(p, ":")
		switch {
		case k == "sigmoid" && fields[0] == "binary":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0) || math.IsInf(f, 0) {
				return fmt.Errorf("%w: lightgbm: objective %q: bad sigmoid", ErrInvalidModel, obj)
			}
			m.sigmoid = f
		case k == "num_class" && fields[0] == "multiclass":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%w: lightgbm: objective %q: bad num_class", ErrInvalidModel, obj)
			}
			objClass = n
		case k == "sqrt":
			return fmt.Errorf("%w: lightgbm: objective %q (sqrt transform)", ErrUnsupportedModel, obj)
		}
		// Other parameters (alpha, tweedie_variance_power, ...) do not
		// affect prediction.
	}
	if m.transform == softmax {
		if numClass < 2 || objClass != numClass || m.numGroups != numClass {
			return fmt.Errorf("%w: lightgbm: objective %q with num_class %d, num_tree_per_iteration %d", ErrInvalidModel, obj, numClass, m.numGroups)
		}
		return nil
	}
	if numClass != 1 || m.numGroups != 1 {
		if len(fields) == 0 && numClass == m.numGroups {
			return nil // custom objective: one raw score per class
		}
		return fmt.Errorf("%w: lightgbm: objective %q with num_class %d, num_tree_per_iteration %d", ErrInvalidModel, obj, numClass, m.numGroups)
	}
	return nil
}

// lgbArray parses a space-separated array of exactly n values. An absent or
// empty value is an empty array.
func lgbArray[T any](kv map[string]string, key string, n int, parse func(string) (T, error)) ([]T, error) {
	s := kv[key]
	if n == 0 {
		if strings.TrimSpace(s) != "" {
			return nil, fmt.Errorf("%w: lightgbm: %s: want no values", ErrInvalidModel, key)
		}
		return nil, nil
	}
	if _, ok := kv[key]; !ok {
		return nil, fmt.Errorf("%w: lightgbm: no %s", ErrInvalidModel, key)
	}
	if c := strings.Count(s, " ") + 1; c != n {
		return nil, fmt.Errorf("%w: lightgbm: %s has %d values, want %d", ErrInvalidModel, key, c, n)
	}
	out := make([]T, 0, n)
	for f := range strings.SplitSeq(s, " ") {
		v, err := parse(f)
		if err != nil {
			return nil, fmt.Errorf("%w: lightgbm: %s: %q", ErrInvalidModel, key, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseInt32(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

func (m *LightGBM) parseTree(kv map[string]string) (lgbTree, error) {
	var t lgbTree
	numLeaves, err := lgbHeaderInt(kv, "num_leaves", 0, true)
	if err != nil {
		return t, err
	}
	if numLeaves < 1 || numLeaves > lgbMaxLeaves {
		return t, fmt.Errorf("%w: lightgbm: num_leaves %d out of range [1,%d]", ErrInvalidModel, numLeaves, lgbMaxLeaves)
	}
	if v := kv["is_linear"]; v != "" && v != "0" {
		return t, fmt.Errorf("%w: lightgbm: linear tree", ErrUnsupportedModel)
	}
	leaves, err := lgbArray(kv, "leaf_value", numLeaves, parseFloat)
	if err != nil {
		return t, err
	}
	for i, v := range leaves {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return t, fmt.Errorf("%w: lightgbm: leaf %d: non-finite value %v", ErrInvalidModel, i, v)
		}
	}
	t.leaves = leaves
	if numLeaves == 1 {
		return t, nil // LightGBM ignores the split arrays of a stump
	}
	n := numLeaves - 1
	feat, err := lgbArray(kv, "split_feature", n, parseInt32)
	if err != nil {
		return t, err
	}
	thr, err := lgbArray(kv, "threshold", n, parseFloat)
	if err != nil {
		return t, err
	}
	dec, err := lgbArray(kv, "decision_type", n, parseInt32)
	if err != nil {
		return t, err
	}
	left, err := lgbArray(kv, "left_child", n, parseInt32)
	if err != nil {
		return t, err
	}
	right, err := lgbArray(kv, "right_child", n, parseInt32)
	if err != nil {
		return t, err
	}
	numCat, err := lgbHeaderInt(kv, "num_cat", 0, true)
	if err != nil {
		return t, err
	}
	if numCat < 0 || numCat > n {
		return t, fmt.Errorf("%w: lightgbm: num_cat %d out of range [0,%d]", ErrInvalidModel, numCat, n)
	}
	var bounds []int32
	var bits []uint32
	if numCat > 0 {
		if bounds, err = lgbArray(kv, "cat_boundaries", numCat+1, parseInt32); err != nil {
			return t, err
		}
		nb := 0
		if s := kv["cat_threshold"]; s != "" {
			nb = strings.Count(s, " ") + 1
		}
		if bits, err = lgbArray(kv, "cat_threshold", nb, parseUint32); err != nil {
			return t, err
		}
		if bounds[0] != 0 || int(bounds[numCat]) != len(bits) {
			return t, fmt.Errorf("%w: lightgbm: cat_boundaries %v do not span %d cat_threshold words", ErrInvalidModel, bounds, len(bits))
		}
		for i := 1; i <= numCat; i++ {
			if bounds[i] < bounds[i-1] {
				return t, fmt.Errorf("%w: lightgbm: cat_boundaries not non-decreasing", ErrInvalidModel)
			}
		}
	}
	if len(m.catBits)+len(bits) > math.MaxInt32 {
		return t, fmt.Errorf("%w: lightgbm: too many categorical words", ErrInvalidModel)
	}
	catBase := int32(len(m.catBits))

	t.nodes = make([]lgbNode, n)
	seenNode := make([]bool, n)
	seenLeaf := make([]bool, numLeaves)
	seenNode[0] = true // the root is nobody's child
	for i := range n {
		nd := lgbNode{feature: feat[i], left: left[i], right: right[i]}
		if feat[i] < 0 || int(feat[i]) >= m.numFeatures {
			return t, fmt.Errorf("%w: lightgbm: node %d: split_feature %d out of range [0,%d)", ErrInvalidModel, i, feat[i], m.numFeatures)
		}
		d := dec[i]
		if d < 0 || d > 0xf || (d>>2)&3 == 3 {
			return t, fmt.Errorf("%w: lightgbm: node %d: decision_type %d", ErrInvalidModel, i, d)
		}
		nd.decision = uint8(d)
		if math.IsNaN(thr[i]) {
			return t, fmt.Errorf("%w: lightgbm: node %d: NaN threshold", ErrInvalidModel, i)
		}
		if d&lgbCategorical != 0 {
			c := thr[i]
			if c != math.Trunc(c) || c < 0 || c >= float64(numCat) {
				return t, fmt.Errorf("%w: lightgbm: node %d: categorical threshold %v not in [0,%d)", ErrInvalidModel, i, c, numCat)
			}
			nd.catLo = catBase + bounds[int(c)]
			nd.catHi = catBase + bounds[int(c)+1]
		} else {
			nd.threshold = thr[i]
		}
		for _, c := range [2]int32{left[i], right[i]} {
			var seen *bool
			switch {
			case c >= 0 && int(c) < n:
				seen = &seenNode[c]
			case c < 0 && int(^c) < numLeaves:
				seen = &seenLeaf[^c]
			default:
				return t, fmt.Errorf("%w: lightgbm: node %d: child %d out of range", ErrInvalidModel, i, c)
			}
			if *seen {
				return t, fmt.Errorf("%w: lightgbm: node %d: child %d reached twice (cycle or shared node)", ErrInvalidModel, i, c)
			}
			*seen = true
		}
		t.nodes[i] = nd
	}
	// n nodes each with two distinct children and no child reached twice or
	// pointing at the root: every node and leaf has exactly one parent, so
	// the structure is a tree rooted at node 0 and walks terminate.
	m.catBits = append(m.catBits, bits...)
	return t, nil
}

// NumFeatures is the number of input features the model expects
// (max_feature_idx + 1).
func (m *LightGBM) NumFeatures() int { return m.numFeatures }

// NumOutputs is the length of PredictMulti's output: num_class for
// multiclass models and 1 otherwise.
func (m *LightGBM) NumOutputs() int { return m.numGroups }

// NumTrees is the number of trees in the ensemble.
func (m *LightGBM) NumTrees() int { return len(m.trees) }

// FeatureNames returns the feature names stored in the model, or nil when it
// has none. The slice must not be modified.
func (m *LightGBM) FeatureNames() []string { return m.featureNames }

// Objective is the objective line of the model file, such as
// "binary sigmoid:1" or "multiclass num_class:3"; empty for a custom
// objective.
func (m *LightGBM) Objective() string { return m.objective }

// leaf walks t for row x as LightGBM's Tree::GetLeaf and returns the leaf
// value. Features beyond len(x) are NaN.
func (m *LightGBM) leaf(t *lgbTree, x []float64) float64 {
	if len(t.nodes) == 0 {
		return t.leaves[0]
	}
	var i int32
	for i >= 0 {
		nd := &t.nodes[i]
		fval := math.NaN()
		if int(nd.feature) < len(x) {
			fval = x[nd.feature]
		}
		if nd.decision&lgbCategorical != 0 {
			i = m.categorical(nd, fval)
		} else {
			i = numerical(nd, fval)
		}
	}
	return t.leaves[^i]
}

// numerical is LightGBM's Tree::NumericalDecision.
func numerical(nd *lgbNode, fval float64) int32 {
	missing := (nd.decision >> 2) & 3
	if math.IsNaN(fval) && missing != lgbMissingNaN {
		fval = 0
	}
	if (missing == lgbMissingZero && fval >= -lgbZeroThreshold && fval <= lgbZeroThreshold) ||
		(missing == lgbMissingNaN && math.IsNaN(fval)) {
		if nd.decision&lgbDefaultLeft != 0 {
			return nd.left
		}
		return nd.right
	}
	if fval <= nd.threshold {
		return nd.left
	}
	return nd.right
}

// categorical is LightGBM's Tree::CategoricalDecision: NaN and negative
// values go right; otherwise the value truncated to an int goes left when
// its bit is set in the split's bitset.
func (m *LightGBM) categorical(nd *lgbNode, fval float64) int32 {
	// static_cast<int> of NaN or of a value outside int32 yields INT_MIN on
	// x86, which LightGBM then sends right as a negative category.
	if math.IsNaN(fval) || fval <= -1 || fval >= 1<<31 {
		return nd.right
	}
	c := uint32(int32(fval)) // truncates toward zero; -0.5 is category 0
	w := int32(c / 32)
	if w < nd.catHi-nd.catLo && m.catBits[nd.catLo+w]>>(c%32)&1 != 0 {
		return nd.left
	}
	return nd.right
}

// margins writes each output group's raw score for row x to out (len
// numGroups): the sum of its trees, divided by the number of iterations for
// average_output models. Tree i belongs to group i % numGroups.
func (m *LightGBM) margins(x []float64, out []float64) {
	clear(out)
	g := 0
	for i := range m.trees {
		out[g] += m.leaf(&m.trees[i], x)
		if g++; g == m.numGroups {
			g = 0
		}
	}
	if m.average {
		for k := range out {
			out[k] /= float64(m.numIter)
		}
	}
}

// PredictMargin returns the raw score of a single-output model for row x, as
// LightGBM's predict(raw_score=True). NaN marks a missing value, as do
// features beyond len(x). It returns NaN for a multi-output model.
func (m *LightGBM) PredictMargin(x []float64) float64 {
	if m.numGroups != 1 {
		return math.NaN()
	}
	var out [1]float64
	m.margins(x, out[:])
	return out[0]
}

// Predict returns the prediction of a single-output model for row x in the
// objective's output space: a probability for binary and cross_entropy,
// exp(margin) for poisson, gamma and tweedie, the margin otherwise. NaN marks
// a missing value, as do features beyond len(x). It returns NaN for a
// multi-output model; use PredictMulti.
func (m *LightGBM) Predict(x []float64) float64 {
	if m.numGroups != 1 {
		return math.NaN()
	}
	var out [1]float64
	m.margins(x, out[:])
	v := out[0]
	switch m.transform {
	case logistic:
		return 1 / (1 + math.Exp(-m.sigmoid*v))
	case expLink:
		return math.Exp(v)
	}
	return v
}

// PredictMulti writes the prediction for row x to out, which should have
// NumOutputs() elements: class probabilities (softmax) for multiclass, raw
// scores for a multi-output custom objective, the single Predict value
// otherwise. NaN marks a missing value, as do features beyond len(x). If out
// is shorter only its elements are written; elements beyond NumOutputs() are
// set to NaN.
func (m *LightGBM) PredictMulti(x []float64, out []float64) {
	no := m.numGroups
	for i := no; i < len(out); i++ {
		out[i] = math.NaN()
	}
	if len(out) == 0 {
		return
	}
	if no == 1 {
		out[0] = m.Predict(x)
		return
	}
	var buf [16]float64
	var mg []float64
	if no <= len(buf) {
		mg = buf[:no]
	} else {
		mg = make([]float64, no)
	}
	m.margins(x, mg)
	if m.transform == softmax {
		// Common::Softmax: subtract the maximum, exponentiate, normalise.
		hi := mg[0]
		for _, v := range mg {
			hi = max(hi, v)
		}
		var sum float64
		for k, v := range mg {
			mg[k] = math.Exp(v - hi)
			sum += mg[k]
		}
		for k := range mg {
			mg[k] /= sum
		}
	}
	copy(out, mg)
}
