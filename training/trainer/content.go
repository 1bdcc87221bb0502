package trainer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/models/vocab"
)

// ContentOptions configure FitContent.
type ContentOptions struct {
	// Analyzer turns item text into term frequencies; the zero value means
	// content.DefaultAnalyzer.
	Analyzer content.Analyzer
	// MinDF drops terms found in fewer items (0 or 1 keeps every term).
	MinDF int
	// Serving are the serving options written to model.yaml (nil Weights
	// means models.DefaultEventWeights; see content.DefaultOptions for the
	// defaults of `recctl train`).
	Serving content.Options
}

// FitContent builds the TF-IDF content model of the catalogue items: every
// item gets a vector, whether or not anyone interacted with it. Term indices
// follow the terms' byte order and items keep their order, so the same items
// and options always give the same model. Interactions are not used.
func FitContent(ctx context.Context, items []dataset.Item, o ContentOptions) (*content.Model, error) {
	if len(items) == 0 {
		return nil, errors.New("no catalogue items (items.csv is missing or empty)")
	}
	if o.Analyzer == (content.Analyzer{}) {
		o.Analyzer = content.DefaultAnalyzer()
	}
	if err := o.Analyzer.Fields.Validate(); err != nil {
		return nil, err
	}
	if o.MinDF < 0 {
		return nil, fmt.Errorf("min_df %d: want >= 0", o.MinDF)
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	voc, err := vocab.New(ids)
	if err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}

	// Pass 1: term frequencies per item over provisional term ids (first
	// seen), and document frequencies.
	type entry struct {
		term int32
		tf   float64
	}
	provisional := map[string]int32{}
	var names []string
	var df []int
	rows := make([][]entry, len(items))
	for i, it := range items {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		tf := o.Analyzer.TermFreqs(it)
		row := make([]entry, 0, len(tf))
		for term, f := range tf {
			id, ok := provisional[term]
			if !ok {
				id = int32(len(names))
				provisional[term] = id
				names = append(names, term)
				df = append(df, 0)
			}
			df[id]++
			row = append(row, entry{id, f})
		}
		rows[i] = row
	}

	// Final term ids: the kept terms in byte order.
	order := make([]int32, 0, len(names))
	for id := range names {
		if df[id] >= o.MinDF {
			order = append(order, int32(id))
		}
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(names[a], names[b]) })
	final := make([]int32, len(names))
	for i := range final {
		final[i] = -1
	}
	terms := make([]string, len(order))
	idf := make([]float32, len(order))
	for t, id := range order {
		final[id] = int32(t)
		terms[t] = names[id]
		idf[t] = float32(content.IDF(len(items), df[id]))
	}

	// Pass 2: tf·idf, L2-normalised, with the idf the model stores, as
	// the model vectorises the items it learns while serving.
	vectors := make([]content.Vector, len(items))
	var ts []int32
	var ws []float64
	for i, row := range rows {
		ts, ws = ts[:0], ws[:0]
		for _, e := range row {
			if t := final[e.term]; t >= 0 && e.tf > 0 {
				ts = append(ts, t)
				ws = append(ws, e.tf*float64(idf[t]))
			}
		}
		rows[i] = nil
		vectors[i] = content.UnitVector(ts, ws)
	}
	return content.New(voc, terms, idf, vectors, o.Analyzer, o.Serving)
}

// contentParams are the --param keys of `recctl train content`.
var contentParams = []string{
	"title_weight", "description_weight", "category_weight", "brand_weight",
	"stop_words", "min_df",
	content.ParamEventWeights, content.ParamHalfLifeDays, content.ParamProfileTerms,
}

// parseContentOptions validates the --param settings of a content run.
func parseContentOptions(p Params) (ContentOptions, error) {
	if err := unknownParams(p, contentParams...); err != nil {
		return ContentOptions{}, err
	}
	o := ContentOptions{Analyzer: content.DefaultAnalyzer(), MinDF: 1}
	for _, f := range []struct {
		key string
		dst *float64
	}{
		{"title_weight", &o.Analyzer.Fields.Title},
		{"description_weight", &o.Analyzer.Fields.Description},
		{"category_weight", &o.Analyzer.Fields.Category},
		{"brand_weight", &o.Analyzer.Fields.Brand},
	} {
		s, ok := p[f.key]
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return ContentOptions{}, fmt.Errorf("%s %q: want a finite number >= 0", f.key, s)
		}
		*f.dst = x
	}
	if err := o.Analyzer.Fields.Validate(); err != nil {
		return ContentOptions{}, err
	}
	switch s := p["stop_words"]; s {
	case "", "english":
		o.Analyzer.StopWords = true
	case "none":
		o.Analyzer.StopWords = false
	default:
		return ContentOptions{}, fmt.Errorf("stop_words %q: want english or none", s)
	}
	if s, ok := p["min_df"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return ContentOptions{}, fmt.Errorf("min_df %q: want an integer >= 1", s)
		}
		o.MinDF = n
	}
	serving := map[string]any{}
	for _, k := range []string{content.ParamEventWeights, content.ParamHalfLifeDays, content.ParamProfileTerms} {
		if s, ok := p[k]; ok {
			serving[k] = s
		}
	}
	var err error
	if o.Serving, err = content.ParseOptions(serving); err != nil {
		return ContentOptions{}, err
	}
	return o, nil
}

// fitContent is the content trainer: it writes content.bin and items.txt.
func fitContent(ctx context.Context, d *dataset.Dataset, p Params, dir string) (models.Spec, error) {
	o, err := parseContentOptions(p)
	if err != nil {
		return models.Spec{}, err
	}
	m, err := FitContent(ctx, d.Items, o)
	if err != nil {
		return models.Spec{}, err
	}
	if err := m.Items().WriteFile(filepath.Join(dir, vocab.DefaultFile)); err != nil {
		return models.Spec{}, err
	}
	if err := saveArtifact(dir, content.DefaultFile, m); err != nil {
		return models.Spec{}, err
	}
	a := m.Analyzer()
	stop := "none"
	if a.StopWords {
		stop = "english"
	}
	nnz, empty := 0, 0
	for _, id := range m.Items().IDs() {
		w, _ := m.Weights(id)
		nnz += len(w)
		if len(w) == 0 {
			empty++
		}
	}
	return models.Spec{
		File:   content.DefaultFile,
		Items:  vocab.DefaultFile,
		Params: m.Options().Params(),
		Metadata: map[string]any{
			"title_weight":       a.Fields.Title,
			"description_weight": a.Fields.Description,
			"category_weight":    a.Fields.Category,
			"brand_weight":       a.Fields.Brand,
			"stop_words":         stop,
			"min_df":             o.MinDF,
			"terms":              len(m.Terms()),
			"nonzeros":           nnz,
			"items_without_text": empty,
		},
	}, nil
}
