package content

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/recserve/recserve/dataset"
)

// Prefixes of the whole-field terms: an item's category and brand are one
// term each, so "cat:phone-accessories" never mixes with the word "phone".
// Text tokens never contain ':', so the prefixed terms cannot collide with
// them.
const (
	CategoryPrefix = "cat:"
	BrandPrefix    = "brand:"
)

// maxFieldTermBytes bounds a category or brand term; longer values are cut at
// a rune boundary.
const maxFieldTermBytes = 256

// Fields are the weights of an item's text fields in its term frequencies; a
// zero weight leaves the field out.
type Fields struct {
	Title       float64
	Description float64
	Category    float64
	Brand       float64
}

// DefaultFields weigh the title twice the description, category and brand.
func DefaultFields() Fields { return Fields{Title: 2, Description: 1, Category: 1, Brand: 1} }

// Validate reports a negative or non-finite weight, or all weights zero.
func (f Fields) Validate() error {
	for _, x := range []struct {
		name string
		w    float64
	}{{"title", f.Title}, {"description", f.Description}, {"category", f.Category}, {"brand", f.Brand}} {
		if math.IsNaN(x.w) || math.IsInf(x.w, 0) || x.w < 0 {
			return fmt.Errorf("%s weight %v: want a finite number >= 0", x.name, x.w)
		}
	}
	if f == (Fields{}) {
		return fmt.Errorf("every field weight is zero")
	}
	return nil
}

// Analyzer turns an item into weighted term frequencies: the text half of
// TF-IDF. The trainer applies it to every catalogue item; the settings are
// stored in the artifact, so the same analysis can be repeated later. The
// zero value has no usable field weights; start from DefaultAnalyzer.
type Analyzer struct {
	// Fields weigh title, description, category and brand.
	Fields Fields
	// StopWords drops EnglishStopWords from title and description.
	StopWords bool
}

// DefaultAnalyzer is DefaultFields with English stop words removed.
func DefaultAnalyzer() Analyzer { return Analyzer{Fields: DefaultFields(), StopWords: true} }

// Tokenizer returns the tokenizer the analyzer applies to title and
// description, with its own copy of the stop words.
func (a Analyzer) Tokenizer() Tokenizer {
	if a.StopWords {
		return Tokenizer{StopWords: EnglishStopWords()}
	}
	return Tokenizer{}
}

// tokenizer is Tokenizer sharing the package's read-only stop list.
func (a Analyzer) tokenizer() Tokenizer {
	if a.StopWords {
		return Tokenizer{StopWords: englishStopWords}
	}
	return Tokenizer{}
}

// TermFreqs returns the weighted, sublinear term frequencies of it:
//
//	tf(t) = Σ_field weight_field · (1 + ln n_field(t))
//
// over the fields where t occurs n_field(t) > 0 times. Title and description
// are tokenised (see Tokenizer); the category and the brand are one term each,
// CategoryPrefix or BrandPrefix followed by the lower-cased value with its
// spaces collapsed ("cat:phone-accessories", "brand:acme"). An item with no
// text has no terms.
func (a Analyzer) TermFreqs(it dataset.Item) map[string]float64 {
	tf := map[string]float64{}
	tok := a.tokenizer()
	counts := map[string]int{}
	var buf []string
	for _, f := range []struct {
		text string
		w    float64
	}{{it.Title, a.Fields.Title}, {it.Description, a.Fields.Description}} {
		if f.w == 0 || f.text == "" {
			continue
		}
		clear(counts)
		buf = tok.AppendTokens(buf[:0], f.text)
		for _, t := range buf {
			counts[t]++
		}
		for t, n := range counts {
			tf[t] += f.w * (1 + math.Log(float64(n)))
		}
	}
	if t := FieldTerm(CategoryPrefix, it.Category); t != "" && a.Fields.Category != 0 {
		tf[t] += a.Fields.Category
	}
	if t := FieldTerm(BrandPrefix, it.Brand); t != "" && a.Fields.Brand != 0 {
		tf[t] += a.Fields.Brand
	}
	return tf
}

// FieldTerm is the whole-field term of value: prefix followed by value
// lower-cased with runs of white space collapsed to one space, cut to 256
// bytes; "" when value is blank.
func FieldTerm(prefix, value string) string {
	v := strings.Join(strings.Fields(strings.ToLower(value)), " ")
	if v == "" {
		return ""
	}
	if len(v) > maxFieldTermBytes {
		cut := maxFieldTermBytes
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return prefix + v
}

// IDF is the smoothed inverse document frequency of a term found in df of n
// documents: ln((1+n)/(1+df)) + 1. It is at least 1 for df <= n, so a term in
// every item still counts a little.
func IDF(n, df int) float64 {
	return math.Log(float64(1+n)/float64(1+df)) + 1
}
