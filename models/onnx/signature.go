package onnx

import (
	"fmt"
	"slices"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// The signatures model.yaml may name: how the model's one input is built
// from a request and what its output means.
const (
	// UserVector: input float32 [B, N], the user's history as one weight per
	// vocabulary item (N = items in the vocabulary); output float32 [B, N],
	// one score per vocabulary item.
	UserVector = "user_vector"
	// Sequence: input int64 [B, L], the user's last L history items as
	// vocabulary index + 1 (0 = padding, left-padded); output float32 [B, N].
	Sequence = "sequence"
	// Features: input float32 [B, F], the model.yaml features in order;
	// output float32 [B] or [B, 1], one score per row.
	Features = "features"
)

// Parameter defaults.
const (
	defaultEvents          = "view,cart,purchase"
	defaultQueueDelay      = 0 // batch what queued while a Run was busy: scripts/queuedelaybench.sh
	defaultMaxQueueSize    = 1024
	defaultRunners         = 2
	defaultIntraOpThreads  = 1
	maxIntraOpThreads      = 256
	maxBatchSizeLimit      = 1 << 16
	maxQueueSizeLimit      = 1 << 20
	maxRunners             = 256
	maxSequenceLength      = 1 << 16
	maxQueueDelayMicrosecs = 10_000_000
)

// knownParams lists the params keys a signature accepts; any other key is a
// load error, so a misspelt max_batch_size does not silently turn batching
// off. ok is false for an unknown signature.
func knownParams(signature string) (keys []string, ok bool) {
	common := []string{"intra_op_threads", "max_batch_size", "max_queue_delay_us", "max_queue_size", "runners"}
	switch signature {
	case UserVector:
		return append([]string{"weights"}, common...), true
	case Sequence:
		return append([]string{"events", "dedupe_consecutive", "max_len"}, common...), true
	case Features:
		return common, true
	}
	return nil, false
}

// batchOptions configure dynamic batching; maxBatch <= 1 runs every request
// on its own.
type batchOptions struct {
	maxBatch   int
	queueDelay time.Duration
	queueSize  int
	runners    int
	// metrics, from models.Env (nil: none), observes the batcher under the
	// model and version labels; set by build, not by model.yaml.
	metrics        *models.BatchMetrics
	model, version string
}

// config is model.yaml decoded for this kind: the request-to-tensor rules
// and the session settings. Tensor facts are added by bindTensors.
type config struct {
	signature string
	weights   models.EventWeights    // user_vector
	events    map[dataset.Event]bool // sequence
	dedupe    bool                   // sequence
	maxLen    int                    // sequence; 0 = the model's fixed length
	intraOp   int
	batch     batchOptions
}

// parseConfig reads the signature and params of spec.
func parseConfig(spec models.Spec) (config, error) {
	c := config{signature: spec.Signature}
	known, ok := knownParams(spec.Signature)
	if !ok {
		if spec.Signature == "" {
			return c, fmt.Errorf("signature is required: %s, %s or %s", UserVector, Sequence, Features)
		}
		return c, fmt.Errorf("signature %q: want %s, %s or %s: %w", spec.Signature, UserVector, Sequence, Features, models.ErrUnsupported)
	}
	var unknown []string
	for k := range spec.Params {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return c, fmt.Errorf("params: unknown key(s) %s for signature %s (known: %s)",
			strings.Join(unknown, ", "), spec.Signature, strings.Join(known, ", "))
	}
	var err error
	if c.intraOp, err = intParam(spec, "intra_op_threads", defaultIntraOpThreads, 0, maxIntraOpThreads); err != nil {
		return c, err
	}
	if c.batch.maxBatch, err = intParam(spec, "max_batch_size", 0, 0, maxBatchSizeLimit); err != nil {
		return c, err
	}
	delay, err := intParam(spec, "max_queue_delay_us", int(defaultQueueDelay/time.Microsecond), 0, maxQueueDelayMicrosecs)
	if err != nil {
		return c, err
	}
	c.batch.queueDelay = time.Duration(delay) * time.Microsecond
	if c.batch.queueSize, err = intParam(spec, "max_queue_size", defaultMaxQueueSize, 1, maxQueueSizeLimit); err != nil {
		return c, err
	}
	if c.batch.runners, err = intParam(spec, "runners", defaultRunners, 1, maxRunners); err != nil {
		return c, err
	}
	switch spec.Signature {
	case UserVector:
		w, err := spec.ParamString("weights", "")
		if err != nil {
			return c, err
		}
		if c.weights, err = models.ParseEventWeights(w); err != nil {
			return c, fmt.Errorf("params.weights: %w", err)
		}
	case Sequence:
		ev, err := spec.ParamString("events", defaultEvents)
		if err != nil {
			return c, err
		}
		c.events = map[dataset.Event]bool{}
		for _, name := range strings.Split(ev, ",") {
			e, err := dataset.ParseEvent(strings.TrimSpace(name))
			if err != nil {
				return c, fmt.Errorf("params.events: %w", err)
			}
			c.events[e] = true
		}
		if c.dedupe, err = boolParam(spec, "dedupe_consecutive", true); err != nil {
			return c, err
		}
		if c.maxLen, err = intParam(spec, "max_len", 0, 1, maxSequenceLength); err != nil {
			return c, err
		}
	}
	return c, nil
}

// intParam reads an integer parameter and checks lo <= v <= hi (an absent
// key gives def unchecked).
func intParam(spec models.Spec, key string, def, lo, hi int) (int, error) {
	if _, ok := spec.Params[key]; !ok {
		return def, nil
	}
	v, err := spec.ParamInt(key, def)
	if err != nil {
		return 0, err
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("params.%s: %d out of range [%d, %d]", key, v, lo, hi)
	}
	return v, nil
}

// boolParam reads a boolean parameter (a YAML boolean or "true"/"false").
func boolParam(spec models.Spec, key string, def bool) (bool, error) {
	v, ok := spec.Params[key]
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("params.%s: want true or false, got %v", key, v)
}

// tensors is what the session needs to know of the model's input and output.
type tensors struct {
	input, output string
	inType        ort.TensorElementDataType
	width         int // input row width: N, L or F
	outWidth      int // output values per row: N or 1
	outRank       int // 2, or 1 for a features model's [B] output
}

// dimString formats a shape with "B" for the batch dimension.
func dimString(dims []int64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		switch {
		case i == 0 && d < 0:
			parts[i] = "B"
		case d < 0:
			parts[i] = "?"
		default:
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// typeName names an element type as the signatures do.
func typeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	}
	return t.String()
}

// pick returns the tensor named in model.yaml (names, at most one) or the
// model's only tensor.
func pick(role string, names []string, infos []ort.InputOutputInfo) (ort.InputOutputInfo, error) {
	all := make([]string, len(infos))
	for i, in := range infos {
		all[i] = in.Name
	}
	switch {
	case len(names) > 1:
		return ort.InputOutputInfo{}, fmt.Errorf("%ss: model.yaml names %d tensors (%s); this kind feeds and reads one", role, len(names), strings.Join(names, ", "))
	case len(names) == 1:
		for _, in := range infos {
			if in.Name == names[0] {
				return in, nil
			}
		}
		return ort.InputOutputInfo{}, fmt.Errorf("%s %q: not in the model; its %ss are %s", role, names[0], role, strings.Join(all, ", "))
	case len(infos) == 1:
		return infos[0], nil
	}
	return ort.InputOutputInfo{}, fmt.Errorf("the model has %d %ss (%s): name the one to use under %ss in model.yaml", len(infos), role, strings.Join(all, ", "), role)
}

// want describes the tensor a signature expects: element type and dims, -1
// meaning "any" (always so for the batch dimension, which must be dynamic).
type want struct {
	role  string
	typ   ort.TensorElementDataType
	ranks []int   // accepted ranks
	dims  []int64 // dims[1] when rank 2: the expected size, -1 = any
	what  string  // what dims[1] is, for errors ("vocabulary size (items.txt)")
}

// check compares a tensor with the expectation and returns a load error
// naming the tensor, the expected and the actual.
func (w want) check(info ort.InputOutputInfo) error {
	got := info.Dimensions
	expect := func() string {
		var alts []string
		for _, r := range w.ranks {
			d := []int64{-1}
			if r == 2 {
				d = append(d, w.dims[1])
			}
			alts = append(alts, typeName(w.typ)+" "+dimString(d))
		}
		return strings.Join(alts, " or ")
	}
	fail := func(why string) error {
		return fmt.Errorf("%s %q: %s: want %s, got %s %s", w.role, info.Name, why, expect(), typeName(info.DataType), dimString(got))
	}
	if info.OrtValueType != ort.ONNXTypeTensor {
		return fmt.Errorf("%s %q: want a tensor, got %s", w.role, info.Name, info.OrtValueType)
	}
	if info.DataType != w.typ {
		return fail("wrong element type")
	}
	if !slices.Contains(w.ranks, len(got)) {
		return fail("wrong rank")
	}
	if got[0] >= 0 {
		return fail(fmt.Sprintf("the batch dimension is fixed at %d (export it as a dynamic axis)", got[0]))
	}
	if len(got) == 2 && w.dims[1] >= 0 && got[1] >= 0 && got[1] != w.dims[1] {
		return fail(fmt.Sprintf("dimension 1 is %d but the %s is %d", got[1], w.what, w.dims[1]))
	}
	return nil
}

// bindTensors checks the model's real inputs and outputs against the
// signature and returns what the session feeds and reads. n is the
// vocabulary size (user_vector, sequence) and f the number of features.
func bindTensors(c *config, spec models.Spec, ins, outs []ort.InputOutputInfo, n, f int) (tensors, error) {
	in, err := pick("input", spec.Inputs, ins)
	if err != nil {
		return tensors{}, err
	}
	if len(ins) != 1 {
		var names []string
		for _, i := range ins {
			names = append(names, i.Name)
		}
		return tensors{}, fmt.Errorf("the model has %d inputs (%s); signature %s feeds exactly one", len(ins), strings.Join(names, ", "), c.signature)
	}
	out, err := pick("output", spec.Outputs, outs)
	if err != nil {
		return tensors{}, err
	}
	t := tensors{input: in.Name, output: out.Name}
	var wi, wo want
	switch c.signature {
	case UserVector:
		wi = want{role: "input", typ: ort.TensorElementDataTypeFloat, ranks: []int{2}, dims: []int64{-1, int64(n)}, what: "vocabulary size (items)"}
		wo = want{role: "output", typ: ort.TensorElementDataTypeFloat, ranks: []int{2}, dims: []int64{-1, int64(n)}, what: "vocabulary size (items)"}
		t.inType, t.width, t.outWidth, t.outRank = ort.TensorElementDataTypeFloat, n, n, 2
	case Sequence:
		wi = want{role: "input", typ: ort.TensorElementDataTypeInt64, ranks: []int{2}, dims: []int64{-1, int64(c.maxLen)}, what: "params.max_len"}
		if c.maxLen == 0 {
			wi.dims[1] = -1
		}
		wo = want{role: "output", typ: ort.TensorElementDataTypeFloat, ranks: []int{2}, dims: []int64{-1, int64(n)}, what: "vocabulary size (items)"}
		t.inType, t.outWidth, t.outRank = ort.TensorElementDataTypeInt64, n, 2
	case Features:
		wi = want{role: "input", typ: ort.TensorElementDataTypeFloat, ranks: []int{2}, dims: []int64{-1, int64(f)}, what: "number of features listed in model.yaml"}
		wo = want{role: "output", typ: ort.TensorElementDataTypeFloat, ranks: []int{1, 2}, dims: []int64{-1, 1}, what: "number of outputs of a features model"}
		t.inType, t.width, t.outWidth = ort.TensorElementDataTypeFloat, f, 1
	}
	if err := wi.check(in); err != nil {
		return tensors{}, err
	}
	if err := wo.check(out); err != nil {
		return tensors{}, err
	}
	if c.signature == Features {
		t.outRank = len(out.Dimensions)
	}
	if c.signature == Sequence {
		switch l := in.Dimensions[1]; {
		case l < 0 && c.maxLen == 0:
			return tensors{}, fmt.Errorf("input %q: the sequence length is dynamic (%s): set params.max_len", in.Name, dimString(in.Dimensions))
		case l < 0:
			t.width = c.maxLen
		default:
			t.width = int(l)
		}
	}
	return t, nil
}
