package datagen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/recserve/recserve/dataset"
)

// ErrUnknownUser is wrapped by Shoppers.Shopper for a user id the data set
// does not have.
var ErrUnknownUser = errors.New("datagen: unknown user")

// ErrMismatch is wrapped by Shoppers.Check when a data set is not the one
// the Shoppers' Config generates.
var ErrMismatch = errors.New("datagen: data set does not match the config")

// Shoppers is the ground truth of a generated data set: the latent tastes of
// its users, rebuilt deterministically from the Config that generated it,
// with no need for the data set itself. A behaviour simulator plays the
// shoppers against a live server and knows, from the same tastes and funnel
// the generator used, how likely each one is to click and to buy what it is
// shown; that is what makes an experiment's measured lift checkable.
//
// Shoppers is immutable once built and safe for concurrent use.
type Shoppers struct {
	w     *world
	width int              // digits of a user number in its id
	items map[string]int32 // item id → index
}

// NewShoppers rebuilds the catalogue and latent world of Generate(cfg). It
// returns an error wrapping ErrInvalidConfig if cfg is invalid. Building it
// costs about as much as generating the catalogue (milliseconds for the
// demo); each Shopper is then drawn on demand.
func NewShoppers(cfg Config) (*Shoppers, error) {
	w, err := newWorld(cfg)
	if err != nil {
		return nil, err
	}
	s := &Shoppers{
		w:     w,
		width: max(5, len(fmt.Sprint(w.cfg.Users))),
		items: make(map[string]int32, len(w.items)),
	}
	for i := range w.items {
		s.items[w.items[i].ID] = int32(i)
	}
	return s, nil
}

// Config returns the configuration with every default filled in: the one the
// data set was generated with.
func (s *Shoppers) Config() Config { return s.w.cfg }

// UserID returns the id of the n-th user (0-based), as the data set writes it
// ("u00001" for n = 0), so callers need not know the id format.
func (s *Shoppers) UserID(n int) string { return fmt.Sprintf("u%0*d", s.width, n+1) }

// Items returns a copy of the generated catalogue, in id order: what the data
// set's items.csv holds.
func (s *Shoppers) Items() []dataset.Item {
	out := make([]dataset.Item, len(s.w.items))
	for i := range s.w.items {
		out[i] = s.w.items[i].Item
	}
	return out
}

// Check returns an error wrapping ErrMismatch, naming the first difference,
// if d's users and items are not those the Config generates: the guard
// against a ground truth rebuilt with another seed or size than the data set
// a server was loaded with, which would be silently wrong. Interactions are
// not compared (a live data set grows); d.Users may be empty when users.csv
// was not read.
func (s *Shoppers) Check(d *dataset.Dataset) error {
	cfg := s.w.cfg
	if n := len(d.Users); n > 0 && n != cfg.Users {
		return fmt.Errorf("%w: %d users; want %d", ErrMismatch, n, cfg.Users)
	}
	if n := len(d.Items); n != cfg.Items {
		return fmt.Errorf("%w: %d items; want %d", ErrMismatch, n, cfg.Items)
	}
	for i, u := range d.Users {
		if want := s.UserID(i); u.ID != want {
			return fmt.Errorf("%w: user %d is %q; want %q", ErrMismatch, i+1, u.ID, want)
		}
	}
	for i, got := range d.Items {
		want := &s.w.items[i].Item
		samePrice := math.IsNaN(got.Price) && math.IsNaN(want.Price) || math.Abs(got.Price-want.Price) < 0.005
		if got.ID != want.ID || got.Title != want.Title || got.Category != want.Category || got.Brand != want.Brand || !samePrice {
			return fmt.Errorf("%w: item %d is %s %q (%s, %v); want %s %q (%s, %v)", ErrMismatch, i+1,
				got.ID, got.Title, got.Category, got.Price, want.ID, want.Title, want.Category, want.Price)
		}
	}
	return nil
}

// Shopper returns the latent tastes of the user with the given id ("u00001"),
// drawn exactly as the generator drew them. It returns an error wrapping
// ErrUnknownUser for any other id. It costs about a microsecond; callers that
// score many items for one user keep the Shopper.
func (s *Shoppers) Shopper(userID string) (*Shopper, error) {
	n, err := s.userNumber(userID)
	if err != nil {
		return nil, err
	}
	sh := &Shopper{s: s, id: userID, t: newTastes(len(s.w.cats))}
	// The generator seeds the user's stream the same way and draws the
	// tastes first (userGen.user).
	r := rand.New(rand.NewPCG(uint64(s.w.cfg.Seed), splitmix64(uint64(n))))
	sh.t.draw(s.w, r)
	return sh, nil
}

// userNumber parses "u00042" into 41.
func (s *Shoppers) userNumber(id string) (int, error) {
	digits, ok := strings.CutPrefix(id, "u")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || n < 1 || n > s.w.cfg.Users || s.UserID(n-1) != id {
		return 0, fmt.Errorf("%w: %q (want u%0*d to %s)", ErrUnknownUser, id, s.width, 1, s.UserID(s.w.cfg.Users-1))
	}
	return n - 1, nil
}

// Shopper is one user's latent tastes: how it weighs categories, brands and
// prices, and how inclined it is to buy. It is immutable and safe for
// concurrent use.
type Shopper struct {
	s  *Shoppers
	id string
	t  tastes
}

// ID returns the user's id.
func (sh *Shopper) ID() string { return sh.id }

// Fit returns how the item suits the shopper; ok is false for an item the
// catalogue does not have.
//
// attraction, in [0, 1], is the chance the shopper takes up the item when it
// is put in front of it: the product of its affinity to the item's category
// (1 for its top category), the fit of the price to its price level (1 at
// its level, 0.5 when the price is unknown) and its acceptance of the brand
// (1 for a favourite brand, its brand loyalty's 0.15-0.7 otherwise). These
// are the factors by which the generator picks the items a shopper views
// (the category it browses, then the price and brand acceptance of a pick),
// so 1 is a perfect fit and a random item of another category is near 0.
// Popularity is not part of it: in the generator it decides which items
// turn up, not whether the shopper wants one that did.
//
// purchase is the probability that the shopper buys the item after viewing
// it: the generator's funnel, P(cart | view) · P(purchase | cart), with the
// same coefficients (category affinity, favourite brand, price fit, the
// item's latent quality and the shopper's propensity), for a shopper who is
// not returning to an abandoned cart.
func (sh *Shopper) Fit(itemID string) (attraction, purchase float64, ok bool) {
	i, ok := sh.s.items[itemID]
	if !ok {
		return 0, 0, false
	}
	w := sh.s.w
	it := &w.items[i]
	brand := 1.0
	if !sh.t.favBrand(it) {
		brand = sh.t.nonFavBrand
	}
	attraction = sh.t.catAff[it.cat] * sh.t.priceFit(w, it) * brand
	purchase = sigmoid(sh.t.cartLogit(w, it, false)) * sigmoid(sh.t.buyLogit(w, it, false))
	return attraction, purchase, true
}

// Affinity returns the shopper's affinity to a category (its slug, as in
// items.csv) in [0, 1]: 1 for its top category, a few hundredths for one it
// only visits in the background, 0 for a category the catalogue lacks.
func (sh *Shopper) Affinity(category string) float64 {
	for c := range sh.s.w.cats {
		if sh.s.w.cats[c].spec.slug == category {
			return sh.t.catAff[c]
		}
	}
	return 0
}

// FavouriteBrands returns the names of the shopper's 1-3 favourite brands.
func (sh *Shopper) FavouriteBrands() []string {
	out := make([]string, len(sh.t.favBrands))
	for i, b := range sh.t.favBrands {
		out[i] = sh.s.w.brands[b].name
	}
	return out
}
