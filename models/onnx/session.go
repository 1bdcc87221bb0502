package onnx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/batcher"
)

// element is an input tensor's element type: float32 for user_vector and
// features, int64 for sequence.
type element interface{ float32 | int64 }

// session is one model version's onnxruntime session and the function that
// runs a block of rows through it, directly or through a dynamic batcher.
//
// One ort.DynamicAdvancedSession serves every goroutine: onnxruntime's
// OrtApi::Run is thread-safe on one session (microsoft/onnxruntime#114,
// "InferenceSession.Run is stateless and can be called concurrently",
// #21946), and onnxruntime_go's DynamicAdvancedSession, unlike its
// AdvancedSession, keeps no per-call state in the session and is documented
// by its author as safe for concurrent use by several goroutines
// (yalue/onnxruntime_go#79). Each call builds its own input and output
// tensors.
type session[T element] struct {
	sess    *ort.DynamicAdvancedSession
	t       tensors
	batcher *batcher.Batcher[[]T, []float32] // nil: run directly
	// release ends the batcher's metrics once it is closed (nil: no batcher).
	release func()
	// runOpts is a free list of run options (each carries a terminate flag
	// for one Run at a time), so a cancellable Run does not create and
	// destroy one per call.
	runOpts chan *ort.RunOptions
}

// runOptionsFree bounds the run options kept for reuse per session.
const runOptionsFree = 64

// runOptions takes run options from the free list or creates them.
func (s *session[T]) runOptions() (*ort.RunOptions, error) {
	select {
	case ro := <-s.runOpts:
		return ro, nil
	default:
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("run options: %w", err)
	}
	return ro, nil
}

// putRunOptions returns ro to the free list (clearing its terminate flag
// when it was set) or destroys it when the list is full.
func (s *session[T]) putRunOptions(ro *ort.RunOptions, terminated bool) {
	if terminated && ro.UnsetTerminate() != nil {
		ro.Destroy()
		return
	}
	select {
	case s.runOpts <- ro:
	default:
		ro.Destroy()
	}
}

// newSession creates the session for path with the tensors t (checked by
// bindTensors), warms it up, and starts its batcher when c asks for one.
func newSession[T element](path string, t tensors, c config) (*session[T], error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(c.intraOp); err != nil {
		return nil, fmt.Errorf("params.intra_op_threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("inter-op threads: %w", err)
	}
	sess, err := ort.NewDynamicAdvancedSession(path, []string{t.input}, []string{t.output}, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: create session: %w", path, err)
	}
	s := &session[T]{sess: sess, t: t, runOpts: make(chan *ort.RunOptions, runOptionsFree)}
	if err := s.warmUp(); err != nil {
		return nil, errors.Join(err, s.close())
	}
	if c.batch.maxBatch > 1 {
		obs, release := c.batch.metrics.Observer(c.batch.model, c.batch.version)
		b, err := batcher.New(batcher.Options{
			MaxBatchSize:  c.batch.maxBatch,
			MaxQueueDelay: c.batch.queueDelay,
			MaxQueueSize:  c.batch.queueSize,
			Runners:       c.batch.runners,
			Observer:      obs,
		}, s.run)
		if err != nil {
			release()
			return nil, errors.Join(fmt.Errorf("params: %w", err), s.close())
		}
		s.batcher, s.release = b, release
	}
	return s, nil
}

// outShape is the output shape for a batch of b rows.
func (s *session[T]) outShape(b int) ort.Shape {
	if s.t.outRank == 1 {
		return ort.NewShape(int64(b))
	}
	return ort.NewShape(int64(b), int64(s.t.outWidth))
}

// warmUp runs one synthetic batch of two rows (all zeros; the second row
// with its first value set to 1) and checks the output's shape and that
// every value is finite: a model that answers NaN or ±Inf, or a shape the
// signature does not promise, fails at load rather than at the first request.
func (s *session[T]) warmUp() error {
	rows := [][]T{make([]T, s.t.width), make([]T, s.t.width)}
	rows[1][len(rows[1])-1] = 1
	data := flatten(rows, s.t.width)
	in, err := ort.NewTensor(ort.NewShape(2, int64(s.t.width)), data)
	if err != nil {
		return fmt.Errorf("warm-up: input tensor: %w", err)
	}
	defer in.Destroy()
	outs := []ort.Value{nil} // onnxruntime allocates it: its shape is checked below
	if err := s.sess.Run([]ort.Value{in}, outs); err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	defer outs[0].Destroy()
	out, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return fmt.Errorf("warm-up: output %q: want a float32 tensor, got %T", s.t.output, outs[0])
	}
	if got, want := out.GetShape(), s.outShape(2); !got.Equals(want) {
		return fmt.Errorf("warm-up: output %q: want shape %v for a batch of 2, got %v", s.t.output, want, got)
	}
	for i, v := range out.GetData() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("warm-up: output %q: value %d of a batch of 2 is %v: the model does not produce finite scores", s.t.output, i, v)
		}
	}
	runtime.KeepAlive(data)
	return nil
}

// flatten copies rows of width w into one row-major slice.
func flatten[T element](rows [][]T, w int) []T {
	data := make([]T, len(rows)*w)
	for i, r := range rows {
		copy(data[i*w:(i+1)*w], r)
	}
	return data
}

// run is the one inference path: it builds ONE input tensor of
// [len(rows), width], runs the session once and splits the output into one
// slice per row (views of one buffer, never reused). Every row must have the
// session's width. The batcher calls it with the rows of many requests; the
// direct path with one request's rows.
//
// A ctx that can be cancelled stops a running inference through
// onnxruntime's terminate flag (RunOptions), and the call then returns
// ctx.Err().
func (s *session[T]) run(ctx context.Context, rows [][]T) ([][]float32, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, r := range rows {
		if len(r) != s.t.width {
			return nil, fmt.Errorf("row %d has %d values; input %q wants %d", i, len(r), s.t.input, s.t.width)
		}
	}
	data := flatten(rows, s.t.width)
	in, err := ort.NewTensor(ort.NewShape(int64(len(rows)), int64(s.t.width)), data)
	if err != nil {
		return nil, fmt.Errorf("input tensor: %w", err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](s.outShape(len(rows)))
	if err != nil {
		return nil, fmt.Errorf("output tensor: %w", err)
	}
	defer out.Destroy()
	var ro *ort.RunOptions
	if ctx.Done() != nil {
		if ro, err = s.runOptions(); err != nil {
			return nil, err
		}
		terminated := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(terminated)
			ro.Terminate()
		})
		defer func() {
			if stop() {
				s.putRunOptions(ro, false) // the hook never ran
				return
			}
			<-terminated // the hook ran or runs: wait before reusing ro
			s.putRunOptions(ro, true)
		}()
	}
	if err := s.sess.RunWithOptions([]ort.Value{in}, []ort.Value{out}, ro); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("run: %w", err)
	}
	runtime.KeepAlive(data)
	flat := out.GetData()
	res := make([][]float32, len(rows))
	w := s.t.outWidth
	for i := range res {
		res[i] = flat[i*w : (i+1)*w : (i+1)*w]
	}
	return res, nil
}

// do runs rows through the batcher when there is one, else directly. A full
// queue is an error wrapping both models.ErrOverloaded (the server answers
// ResourceExhausted) and batcher.ErrQueueFull.
func (s *session[T]) do(ctx context.Context, rows [][]T) ([][]float32, error) {
	if s.batcher == nil {
		return s.run(ctx, rows)
	}
	out, err := s.batcher.Do(ctx, rows)
	if errors.Is(err, batcher.ErrQueueFull) {
		return nil, fmt.Errorf("%w (%w)", models.ErrOverloaded, err)
	}
	return out, err
}

// close stops the batcher (running what is queued) and destroys the
// session.
func (s *session[T]) close() error {
	var errs []error
	if s.batcher != nil {
		errs = append(errs, s.batcher.Close())
		s.release() // after Close: the queued batches it ran are observed
	}
	if s.sess != nil {
		errs = append(errs, s.sess.Destroy())
		s.sess = nil
	}
	for {
		select {
		case ro := <-s.runOpts:
			ro.Destroy()
			continue
		default:
		}
		break
	}
	return errors.Join(errs...)
}
