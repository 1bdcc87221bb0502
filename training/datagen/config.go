package datagen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidConfig is wrapped by every error Generate returns for a bad Config.
var ErrInvalidConfig = errors.New("datagen: invalid config")

// Defaults and limits of Config.
const (
	DefaultUsers           = 5000
	DefaultItems           = 2000
	DefaultSeed            = 1
	DefaultDays            = 90
	DefaultSessionsPerUser = 10
	DefaultViewsPerSession = 5
	DefaultFollowProb      = 0.6
	DefaultNewItems        = 0.12
	DefaultRatingProb      = 0.1
	DefaultMissingPrice    = 0.01

	// MaxCategories is the number of built-in categories.
	MaxCategories = 20
	// MinItemsPerCategory is the least number of items per category.
	MinItemsPerCategory = 5

	maxUsers           = 10_000_000
	maxItems           = 5_000_000
	maxBrands          = 4000
	maxDays            = 3650
	maxSessionsPerUser = 1000
	maxViewsPerSession = 200
)

// DefaultStart is the default start of the time window, 2026-01-01 UTC.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config sets the size and shape of a generated data set. Zero fields take
// their defaults; the probability fields (FollowProb, NewItems, RatingProb,
// MissingPrice) take a negative value to mean "none".
type Config struct {
	// Users is the number of shoppers (default 5000).
	Users int
	// Items is the number of catalogue items (default 2000).
	Items int
	// Seed selects the random stream (default 1, so 0 and 1 give the same
	// data). The same Config always gives the same data set.
	Seed int64
	// Start is the beginning of the time window (default 2026-01-01 UTC).
	Start time.Time
	// Days is the length of the time window in days (default 90).
	Days int

	// Categories is how many of the 20 built-in categories are used (default
	// 20, or fewer when Items < 100 so that each keeps 5 items).
	Categories int
	// Brands is the number of brands (default Items/15, at least Categories,
	// at most 4000); every category has at least one.
	Brands int
	// SessionsPerUser is the mean number of sessions of a shopper (default
	// 10); the per-user count is log-normal, so activity is heavy-tailed.
	SessionsPerUser float64
	// ViewsPerSession is the mean number of item views in a session
	// (default 5).
	ViewsPerSession float64
	// FollowProb is the probability that the next view in a session follows a
	// successor link of the current item (default 0.55; negative for none,
	// which leaves only co-occurrence and no sequential signal).
	FollowProb float64
	// NewItems is the fraction of items that launch during the last 15% of
	// the window (default 0.12; negative for none).
	NewItems float64
	// RatingProb is the probability that a purchase is followed by an
	// explicit 1-5 rating some days later (default 0.1; negative for none).
	RatingProb float64
	// MissingPrice is the fraction of items whose price is unknown, NaN
	// (default 0.01; negative for none).
	MissingPrice float64
}

// withDefaults validates c and returns it with every zero field set to its
// default.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Users < 0 || c.Users > maxUsers:
		return bad("users = %d; want 0 (default) or 1..%d", c.Users, maxUsers)
	case c.Items < 0 || c.Items > maxItems:
		return bad("items = %d; want 0 (default) or %d..%d", c.Items, MinItemsPerCategory, maxItems)
	case c.Items > 0 && c.Items < MinItemsPerCategory:
		return bad("items = %d; want at least %d", c.Items, MinItemsPerCategory)
	case c.Days < 0 || c.Days > maxDays:
		return bad("days = %d; want 0 (default) or 1..%d", c.Days, maxDays)
	case c.Categories < 0 || c.Categories > MaxCategories:
		return bad("categories = %d; want 0 (default) or 1..%d", c.Categories, MaxCategories)
	case c.Brands < 0 || c.Brands > maxBrands:
		return bad("brands = %d; want 0 (default) or 1..%d", c.Brands, maxBrands)
	}
	for _, f := range []struct {
		name      string
		v, lo, hi float64
	}{
		{"sessions per user", c.SessionsPerUser, 0, maxSessionsPerUser},
		{"views per session", c.ViewsPerSession, 0, maxViewsPerSession},
		{"follow probability", c.FollowProb, math.Inf(-1), 1},
		{"new items fraction", c.NewItems, math.Inf(-1), 0.9},
		{"rating probability", c.RatingProb, math.Inf(-1), 1},
		{"missing price fraction", c.MissingPrice, math.Inf(-1), 1},
	} {
		if math.IsNaN(f.v) || f.v < f.lo || f.v > f.hi {
			return bad("%s = %v; want a number in [%v, %v]", f.name, f.v, f.lo, f.hi)
		}
	}
	if c.SessionsPerUser > 0 && c.SessionsPerUser < 1 {
		return bad("sessions per user = %v; want 0 (default) or at least 1", c.SessionsPerUser)
	}
	if c.ViewsPerSession > 0 && c.ViewsPerSession < 1 {
		return bad("views per session = %v; want 0 (default) or at least 1", c.ViewsPerSession)
	}

	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Items == 0 {
		c.Items = DefaultItems
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Categories == 0 {
		c.Categories = min(MaxCategories, max(1, c.Items/MinItemsPerCategory))
	} else if c.Items < c.Categories*MinItemsPerCategory {
		return bad("items = %d for %d categories; want at least %d (%d per category)",
			c.Items, c.Categories, c.Categories*MinItemsPerCategory, MinItemsPerCategory)
	}
	if c.Brands > 0 && c.Brands < c.Categories {
		return bad("brands = %d for %d categories; want at least one per category", c.Brands, c.Categories)
	}
	if c.Brands == 0 {
		c.Brands = min(maxBrands, max(c.Categories, c.Items/15))
	}
	if c.SessionsPerUser == 0 {
		c.SessionsPerUser = DefaultSessionsPerUser
	}
	if c.ViewsPerSession == 0 {
		c.ViewsPerSession = DefaultViewsPerSession
	}
	c.FollowProb = fraction(c.FollowProb, DefaultFollowProb)
	c.NewItems = fraction(c.NewItems, DefaultNewItems)
	c.RatingProb = fraction(c.RatingProb, DefaultRatingProb)
	c.MissingPrice = fraction(c.MissingPrice, DefaultMissingPrice)
	return c, nil
}

// fraction maps 0 to def and a negative value to 0.
func fraction(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}
