package router

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits on request sizes.
const (
	DefaultK        = 10
	MaxK            = 1000
	MaxScoreItems   = 10000
	MaxSessionItems = 1000
)

// validateRecommend checks a recommendation request and returns its k.
func validateRecommend(req Request) (int, error) {
	k, err := validateK(req.K)
	if err != nil {
		return 0, err
	}
	if req.UserID == "" && len(req.SessionItems) == 0 {
		return 0, fieldErr("user_id", "user_id or session_items is required")
	}
	if err := validateSession(req.SessionItems); err != nil {
		return 0, err
	}
	if err := validateContext(req.Context); err != nil {
		return 0, err
	}
	if err := validatePrices(req.Filters); err != nil {
		return 0, err
	}
	return k, nil
}

// validateK returns the k a request asks for: DefaultK for 0, else k when it
// is in [1, MaxK].
func validateK(k int) (int, error) {
	switch {
	case k == 0:
		return DefaultK, nil
	case k < 1 || k > MaxK:
		return 0, fieldErr("k", "must be between 1 and %d (0 means %d), got %d", MaxK, DefaultK, k)
	}
	return k, nil
}

// Limits on request context.
const (
	MaxContextEntries = 64
	MaxContextValue   = 1024
)

// validateContext checks a request's context map. Values feed routing rules
// and features; a numeric value must be finite, since a NaN or infinity would
// silently turn into "missing" or poison a score.
func validateContext(ctx map[string]string) error {
	if len(ctx) > MaxContextEntries {
		return fieldErr("context", "%d entries exceed the limit of %d", len(ctx), MaxContextEntries)
	}
	for k, v := range ctx {
		field := fmt.Sprintf("context[%q]", k)
		switch {
		case k == "":
			return fieldErr("context", "empty key")
		case len(v) > MaxContextValue:
			return fieldErr(field, "value of %d bytes exceeds the limit of %d", len(v), MaxContextValue)
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return fieldErr(field, "%q is not a finite number", v)
		}
	}
	return nil
}

// validateSession checks session items: at most MaxSessionItems, none empty.
func validateSession(items []string) error {
	if len(items) > MaxSessionItems {
		return fieldErr("session_items", "%d items exceed the limit of %d", len(items), MaxSessionItems)
	}
	for i, id := range items {
		if id == "" {
			return fieldErr(fmt.Sprintf("session_items[%d]", i), "empty item id")
		}
	}
	return nil
}

// validatePrices checks a request's price bounds: finite, and min not above
// max. The route's bounds were checked when routes.yaml was loaded.
func validatePrices(f Filters) error {
	for field, b := range map[string]*float64{"filters.price_min": f.PriceMin, "filters.price_max": f.PriceMax} {
		if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
			return fieldErr(field, "%v is not a finite price", *b)
		}
	}
	if f.PriceMin != nil && f.PriceMax != nil && *f.PriceMin > *f.PriceMax {
		return fieldErr("filters.price_max", "%v is below price_min %v", *f.PriceMax, *f.PriceMin)
	}
	return nil
}
