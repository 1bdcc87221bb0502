package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// RowModel is a model that predicts from ready-made feature rows: tree
// ensembles, linear models, ONNX models of the features signature. The
// offline batch scorer (`recctl predict`) feeds it rows from a CSV file; at
// serving, Registry.Build binds it to the feature pipeline and it becomes a
// Scorer. Implementations are safe for concurrent use.
type RowModel interface {
	Model
	// Features names the values of a row, in order.
	Features() []string
	// NumOutputs is the number of values PredictRow writes.
	NumOutputs() int
	// PredictRow writes the prediction for row x (NaN = missing) to out,
	// which has NumOutputs() elements.
	PredictRow(x []float64, out []float64)
}

// RowBatcher is a RowModel that predicts many rows faster than one at a
// time (a tree ensemble walks each tree over a block of rows while the tree
// is in cache). The Scorer role uses it when present.
type RowBatcher interface {
	// PredictRows predicts the rows stored row-major in xs (stride
	// len(Features())), writing NumOutputs() values per row to out.
	PredictRows(xs []float64, out []float64)
}

// Features is the feature pipeline as model builders see it; the one
// implementation is models/features, shared by serving and the training
// export so a model sees the same numbers in both.
type Features interface {
	// Bind resolves a model's ordered feature names. A name the pipeline does
	// not compute is an error listing it.
	Bind(names []string) (Featurizer, error)
}

// Featurizer computes the feature rows of one bound model. Implementations
// are safe for concurrent use.
type Featurizer interface {
	// Rows writes the row of (q, itemIDs[i]) to dst[i*w:(i+1)*w], w being the
	// number of bound names; NaN marks a missing value. dst has
	// len(itemIDs)*w elements.
	Rows(q Query, itemIDs []string, dst []float64) error
}

// featureScorer is a RowModel bound to the feature pipeline: the Scorer
// role of gbm, linear and ONNX feature models, implemented once.
type featureScorer struct {
	RowModel
	rows  Featurizer
	width int
	bufs  sync.Pool // *[]float64 row buffers
}

// withFeatures gives a single-output RowModel the Scorer role through f.
// Other models are returned unchanged.
func withFeatures(f Features, m Model) (Model, error) {
	rm, ok := m.(RowModel)
	if !ok {
		return m, nil
	}
	if _, ok := m.(Scorer); ok || rm.NumOutputs() != 1 {
		return m, nil
	}
	rows, err := f.Bind(rm.Features())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("features: %w", err), m.Close())
	}
	return &featureScorer{RowModel: rm, rows: rows, width: len(rm.Features())}, nil
}

// Probabilities reports whether the row model's predictions are
// probabilities (it says so with a Probabilities method).
func (s *featureScorer) Probabilities() bool {
	p, ok := s.RowModel.(interface{ Probabilities() bool })
	return ok && p.Probabilities()
}

// scoreChunk bounds the rows computed between cancellation checks and the
// size of a pooled buffer.
const scoreChunk = 256

// Score implements Scorer: the pipeline's rows for the items, predicted one
// by one, in chunks so a 10,000-item request checks its deadline and keeps
// its buffer small.
func (s *featureScorer) Score(ctx context.Context, q Query, itemIDs []string) ([]float64, error) {
	bp, _ := s.bufs.Get().(*[]float64)
	if bp == nil {
		b := make([]float64, scoreChunk*s.width)
		bp = &b
	}
	defer s.bufs.Put(bp)
	buf := *bp
	out := make([]float64, len(itemIDs))
	for lo := 0; lo < len(itemIDs); lo += scoreChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids := itemIDs[lo:min(lo+scoreChunk, len(itemIDs))]
		rows := buf[:len(ids)*s.width]
		if err := s.rows.Rows(q, ids, rows); err != nil {
			return nil, err
		}
		if b, ok := s.RowModel.(RowBatcher); ok {
			b.PredictRows(rows, out[lo:lo+len(ids)])
			continue
		}
		for i := range ids {
			s.PredictRow(rows[i*s.width:(i+1)*s.width], out[lo+i:lo+i+1])
		}
	}
	return out, nil
}
