package datagen

import (
	"math"
	"math/rand/v2"
	"slices"
)

// tastes are one shopper's latent preferences: what the generator draws
// first from the shopper's own random stream, and what both the generated
// events (userGen) and the ground truth (Shopper) read, so the two cannot
// drift apart.
type tastes struct {
	catW   []float64 // category weights, summing to 1
	catAff []float64 // catW over its maximum: 1 for the top category
	catCDF []float64 // running sum of catW
	// favBrands are 1-3 favourite brands; nonFavBrand is the acceptance of
	// a brand that is not one of them.
	favBrands   []int32
	nonFavBrand float64
	// priceZ is the preferred log-price offset from every category's median
	// and priceTol the tolerance around it.
	priceZ, priceTol float64
	propensity       float64 // buying propensity, ~N(0, 0.7)
}

func newTastes(categories int) tastes {
	return tastes{
		catW:   make([]float64, categories),
		catAff: make([]float64, categories),
		catCDF: make([]float64, categories),
	}
}

// draw draws the tastes from r, reusing t's buffers. The order of the draws
// is part of the generator's output: changing it changes every data set.
func (t *tastes) draw(w *world, r *rand.Rand) {
	nc := len(w.cats)
	clear(t.catW)
	k := 1
	switch u := r.Float64(); {
	case u < 0.35:
	case u < 0.75:
		k = 2
	default:
		k = 3
	}
	k = min(k, nc)
	favTotal := 0.0
	for picked := 0; picked < k; {
		c := sample(w.trafficCDF, r.Float64())
		if t.catW[c] > 0 {
			continue
		}
		t.catW[c] = r.ExpFloat64() + r.ExpFloat64() // Gamma(2)
		favTotal += t.catW[c]
		picked++
	}
	trafficTotal := w.trafficCDF[nc-1]
	maxW := 0.0
	for c := range t.catW {
		t.catW[c] = 0.9*t.catW[c]/favTotal + 0.1*w.traffic[c]/trafficTotal
		maxW = max(maxW, t.catW[c])
	}
	s := 0.0
	for c, v := range t.catW {
		t.catAff[c] = v / maxW
		s += v
		t.catCDF[c] = s
	}

	t.favBrands = t.favBrands[:0]
	for range 1 + r.IntN(3) {
		cat := &w.cats[sample(t.catCDF, r.Float64())]
		b := cat.brands[sample(cat.brandCDF, r.Float64())]
		if !slices.Contains(t.favBrands, b) {
			t.favBrands = append(t.favBrands, b)
		}
	}
	t.nonFavBrand = 0.15 + 0.55*r.Float64()
	t.priceZ = 0.6 * r.NormFloat64()
	t.priceTol = 0.4 + 0.4*r.Float64()
	t.propensity = 0.7 * r.NormFloat64()
}

// segment is the users.csv "segment" attribute, from the price level.
func (t *tastes) segment() string {
	switch {
	case t.priceZ < -0.35:
		return "budget"
	case t.priceZ > 0.35:
		return "premium"
	}
	return "mainstream"
}

// priceFit is in (0, 1]: 1 at the user's preferred price level for the
// item's category, 0.5 when the price is unknown.
func (t *tastes) priceFit(w *world, it *item) float64 {
	if math.IsNaN(it.logPrice) {
		return 0.5
	}
	d := it.logPrice - (w.cats[it.cat].logMedian + t.priceZ)
	return math.Exp(-d * d / (2 * t.priceTol * t.priceTol))
}

func (t *tastes) favBrand(it *item) bool {
	return slices.Contains(t.favBrands, it.brand)
}

// brandFit is 1 for a favourite brand, else 0: the funnel's brand term.
func (t *tastes) brandFit(it *item) float64 {
	if t.favBrand(it) {
		return 1
	}
	return 0
}

// cartLogit is the logit of adding it to the cart after viewing it;
// returning marks a view that resumes an abandoned cart.
func (t *tastes) cartLogit(w *world, it *item, returning bool) float64 {
	aff := t.catAff[it.cat]
	pf := t.priceFit(w, it)
	bf := t.brandFit(it)
	ret := 0.0
	if returning {
		ret = 1
	}
	return cartBase + cartCategory*aff + cartBrand*bf + cartPrice*pf +
		it.quality + t.propensity + cartReturn*ret
}

// buyLogit is the logit of buying it once it is in the cart.
func (t *tastes) buyLogit(w *world, it *item, returning bool) float64 {
	pf := t.priceFit(w, it)
	bf := t.brandFit(it)
	ret := 0.0
	if returning {
		ret = 1
	}
	return buyBase + buyPrice*pf + buyBrand*bf + buyQuality*it.quality +
		buyPropens*t.propensity + buyReturn*ret
}
