// Package builtin registers every model kind recserve ships, so the server,
// the evaluator and the CLI build models from one table.
package builtin

import (
	"errors"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/models/gbm"
	"github.com/recserve/recserve/models/itemknn"
	"github.com/recserve/recserve/models/linear"
	"github.com/recserve/recserve/models/onnx"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/userknn"
)

// Option configures Registry.
type Option func(*options)

type options struct {
	onnx    *onnx.Runtime
	onnxErr error
}

// WithONNX gives the onnx kind its runtime. A nil rt (onnxruntime failed to
// load, for the reason err) keeps the kind registered: its models then fail
// to load with an error giving err and the fix, while every Go-native kind
// serves.
func WithONNX(rt *onnx.Runtime, err error) Option {
	return func(o *options) { o.onnx, o.onnxErr = rt, err }
}

// Registry returns a registry of every built-in model kind. Without WithONNX
// the onnx kind is registered but cannot load models (the caller did not load
// onnxruntime), so callers that serve only Go-native models pass nothing.
func Registry(opts ...Option) *models.Registry {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	onnxBuilder := onnx.Builder(o.onnx)
	if o.onnx == nil {
		reason := o.onnxErr
		if reason == nil {
			reason = errors.New("the caller did not load onnxruntime")
		}
		onnxBuilder = onnx.Unavailable(reason)
	}
	k := models.NewRegistry()
	for kind, b := range map[string]models.Builder{
		popularity.Kind: popularity.Build,
		itemknn.Kind:    itemknn.Build,
		userknn.Kind:    userknn.Build,
		content.Kind:    content.Build,
		gbm.Kind:        gbm.Build,
		linear.Kind:     linear.Build,
		onnx.Kind:       onnxBuilder,
	} {
		if err := k.Register(kind, b); err != nil {
			panic(err) // unreachable: the literal above has unique keys
		}
	}
	return k
}

// LoadONNX finds and loads onnxruntime (onnx.Open) for tools that build
// models outside the server, such as `recctl eval` and `recctl predict`. The
// Option gives the onnx kind the runtime, or the reason it could not be
// loaded; release drops the tool's hold on it (a model built meanwhile keeps
// the library loaded until it is closed), and is safe to call when loading
// failed.
func LoadONNX() (opt Option, release func() error) {
	rt, err := onnx.Open()
	if err != nil {
		return WithONNX(nil, err), func() error { return nil }
	}
	return WithONNX(rt, nil), rt.Close
}
