// Package predict scores feature rows offline: a CSV file whose header names
// a row model's features in, one prediction per row out, in input order. It
// is `recctl predict`, the batch counterpart of the Score RPC, and runs any
// models.RowModel (gbm, linear, ONNX features models) on every core while
// holding only a few chunks of the input in memory.
package predict

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
)

// Load builds the model in version directory dir with the built-in kinds
// and checks that it scores feature rows. The caller closes it.
func Load(ctx context.Context, dir string) (models.RowModel, error) {
	spec, err := models.ReadSpec(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	v := models.Version{Name: filepath.Base(filepath.Dir(abs)), ID: filepath.Base(abs), Dir: dir, Spec: spec}
	onnxOpt, releaseONNX := builtin.LoadONNX() // onnx models need onnxruntime (make ort)
	defer releaseONNX()                        // a loaded model keeps it until closed
	m, err := builtin.Registry(onnxOpt).Build(ctx, models.Env{}, v)
	if err != nil {
		return nil, err
	}
	p, ok := m.(models.RowModel)
	if !ok {
		m.Close()
		return nil, fmt.Errorf("%s: a %s model does not score feature rows (it has no Features/PredictRow): %w", dir, spec.Kind, models.ErrUnsupported)
	}
	return p, nil
}

// Options tunes a batch run.
type Options struct {
	// Workers is the number of scoring goroutines (at least 1).
	Workers int
	// IDColumn, when set, is an input column copied to the output before
	// the predictions.
	IDColumn string
	// ChunkRows is how many rows are read, scored and written as one unit
	// (default 4096); memory holds a few chunks per worker.
	ChunkRows int
}

// chunk is a run of consecutive input rows on its way from the reader
// through a worker to the writer.
type chunk struct {
	cells   []string  // rows × len(features) raw feature cells, trimmed
	ids     []string  // one per row when there is an id column
	lines   []int     // physical line of each row
	preds   []float64 // rows × NumOutputs, filled by a worker
	readErr error     // the error that ended reading after these rows
	err     error     // the first error of this chunk, set by the worker
	done    chan struct{}
}

// File scores every row of the CSV file in with m and writes the
// predictions, in input order, to the CSV file out. The output is written to a
// temporary file renamed into place, so a failed run leaves no partial file.
// It returns the number of rows scored.
func File(ctx context.Context, m models.RowModel, in, out string, o Options) (n int, err error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	err = dataset.WriteFileAtomic(out, func(w io.Writer) error {
		n, err = Stream(ctx, m, f, in, w, o)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Stream reads feature rows from r (name is used in errors), scores them
// in chunks on o.Workers goroutines and writes the predictions to w in
// input order. At most about 3×workers+2 chunks are held at once (queued,
// being scored, being written), so memory does not grow with the input.
func Stream(ctx context.Context, m models.RowModel, r io.Reader, name string, w io.Writer, o Options) (int, error) {
	features := m.Features()
	nOut := m.NumOutputs()
	if o.ChunkRows < 1 {
		o.ChunkRows = 4096
	}
	o.Workers = max(o.Workers, 1)

	cr := dataset.NewCSVReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return 0, fmt.Errorf("%s: empty file; want a header naming the features %s", name, strings.Join(features, ", "))
	}
	if err != nil {
		return 0, csvError(name, err)
	}
	cols, idCol, err := mapColumns(header, features, o.IDColumn)
	if err != nil {
		return 0, &dataset.ParseError{File: name, Line: 1, Err: err}
	}
	width := len(header)

	cw := csv.NewWriter(w)
	var outHeader []string
	if idCol >= 0 {
		outHeader = append(outHeader, o.IDColumn)
	}
	if nOut == 1 {
		outHeader = append(outHeader, "prediction")
	} else {
		for j := range nOut {
			outHeader = append(outHeader, "p"+strconv.Itoa(j))
		}
	}
	if err := cw.Write(outHeader); err != nil {
		return 0, err
	}

	ctx, cancel := context.WithCancel(ctx)
	jobs := make(chan *chunk, o.Workers)
	order := make(chan *chunk, o.Workers)
	var wg sync.WaitGroup
	// On any return, stop the reader and workers and wait for them.
	defer func() {
		cancel()
		wg.Wait()
	}()

	// Reader: the only sender on jobs and order, so both see chunks in input
	// order. A chunk is queued for the writer only once a worker has it, so
	// the writer never waits for a chunk nobody will finish.
	wg.Go(func() {
		defer close(order)
		defer close(jobs)
		for {
			c := readChunk(cr, name, width, cols, idCol, o.ChunkRows)
			for _, ch := range []chan *chunk{jobs, order} {
				select {
				case ch <- c:
				case <-ctx.Done():
					return
				}
			}
			if c.readErr != nil {
				return
			}
		}
	})
	for range o.Workers {
		wg.Go(func() {
			x := make([]float64, len(features))
			for c := range jobs {
				scoreChunk(ctx, m, c, x, features, nOut, name)
				close(c.done)
			}
		})
	}

	rows := 0
	rec := make([]string, len(outHeader))
	var buf []byte
	for c := range order {
		select {
		case <-c.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if c.err != nil && c.err != io.EOF {
			return 0, c.err
		}
		for i := range c.lines {
			k := 0
			if idCol >= 0 {
				rec[0] = c.ids[i]
				k = 1
			}
			for j, v := range c.preds[i*nOut : (i+1)*nOut] {
				buf = strconv.AppendFloat(buf[:0], v, 'g', -1, 64)
				rec[k+j] = string(buf)
			}
			if err := cw.Write(rec); err != nil {
				return 0, err
			}
		}
		rows += len(c.lines)
		if c.err == io.EOF {
			break
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return rows, nil
}

// mapColumns finds each feature's column in header (names match
// exactly after trimming space) and the id column (-1 when idColumn is "").
// Columns that are neither are ignored.
func mapColumns(header, features []string, idColumn string) (cols []int, idCol int, err error) {
	at := make(map[string]int, len(header))
	dup := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, seen := at[h]; seen {
			dup[h] = true
		}
		at[h] = i
	}
	var missing, dups []string
	cols = make([]int, len(features))
	for j, f := range features {
		i, ok := at[f]
		switch {
		case !ok:
			missing = append(missing, f)
		case dup[f]:
			dups = append(dups, f)
		}
		cols[j] = i
	}
	idCol = -1
	if idColumn != "" {
		i, ok := at[idColumn]
		switch {
		case !ok:
			missing = append(missing, idColumn+" (--id-column)")
		case dup[idColumn]:
			dups = append(dups, idColumn)
		}
		idCol = i
	}
	if len(missing) > 0 {
		return nil, 0, fmt.Errorf("missing column %s; the model needs %s", strings.Join(missing, ", "), strings.Join(features, ", "))
	}
	if len(dups) > 0 {
		return nil, 0, fmt.Errorf("duplicate column %s", strings.Join(dups, ", "))
	}
	return cols, idCol, nil
}

// readChunk reads up to n records. The record's strings are retained:
// csv.Reader allocates them afresh for every record even with ReuseRecord
// (only the slice holding them is reused). readErr is io.EOF at the end of
// the input, or the error that stopped reading.
func readChunk(cr *csv.Reader, name string, width int, cols []int, idCol, n int) *chunk {
	c := &chunk{
		cells: make([]string, 0, n*len(cols)),
		lines: make([]int, 0, n),
		done:  make(chan struct{}),
	}
	for len(c.lines) < n {
		rec, err := cr.Read()
		if err != nil {
			if err != io.EOF {
				err = csvError(name, err)
			}
			c.readErr = err
			return c
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != width {
			c.readErr = &dataset.ParseError{File: name, Line: line,
				Err: fmt.Errorf("record has %d fields, header has %d", len(rec), width)}
			return c
		}
		for _, i := range cols {
			c.cells = append(c.cells, strings.TrimSpace(rec[i]))
		}
		if idCol >= 0 {
			c.ids = append(c.ids, strings.TrimSpace(rec[idCol]))
		}
		c.lines = append(c.lines, line)
	}
	return c
}

// scoreChunk parses and scores c's rows into c.preds, using x as the
// row buffer, and sets c.err to the first bad cell or else c.readErr.
func scoreChunk(ctx context.Context, m models.RowModel, c *chunk, x []float64, features []string, nOut int, name string) {
	if err := ctx.Err(); err != nil {
		c.err = err
		return
	}
	nf := len(features)
	rows := len(c.lines)
	c.preds = make([]float64, rows*nOut)
	for r := range rows {
		for j, s := range c.cells[r*nf : (r+1)*nf] {
			if s == "" {
				x[j] = math.NaN()
				continue
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				c.err = &dataset.ParseError{File: name, Line: c.lines[r],
					Err: fmt.Errorf("column %s: bad value %q: want a number or empty", features[j], s)}
				return
			}
			x[j] = v
		}
		m.PredictRow(x, c.preds[r*nOut:(r+1)*nOut])
	}
	c.cells = nil // release the input as soon as it is scored
	c.err = c.readErr
}

// csvError converts an encoding/csv error into a dataset.ParseError
// ("FILE:LINE: message"); other (I/O) errors get the file name.
func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &dataset.ParseError{File: name, Line: pe.Line, Err: pe.Err}
	}
	return fmt.Errorf("%s: %w", name, err)
}
