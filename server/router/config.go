package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"
)

// ConfigFile is the routing configuration's name inside a model repository.
const ConfigFile = "routes.yaml"

// DefaultFallback is the fallback model used when routes.yaml names none.
const DefaultFallback = "popularity"

// DefaultSimilarModel is the SimilarItems model used when routes.yaml names
// none.
const DefaultSimilarModel = "itemknn"

// DefaultRouteName is the route used when routes.yaml is absent.
const DefaultRouteName = "default"

// Config is the routing configuration (routes.yaml). The zero value is not
// valid; use DefaultConfig or LoadConfig.
type Config struct {
	// DefaultRoute answers requests that name no route.
	DefaultRoute string `yaml:"default_route"`
	// DefaultScorer answers Score requests that name no model.
	DefaultScorer string `yaml:"default_scorer"`
	// Fallback answers cold-start users and backfills short answers, unless a
	// route names its own.
	Fallback string `yaml:"fallback"`
	// DefaultSimilar answers SimilarItems requests that name no model
	// (default itemknn).
	DefaultSimilar string `yaml:"default_similar,omitempty"`
	// Routes are the named routes.
	Routes []Route `yaml:"routes"`
}

// Route is a named plan: which models produce candidates and how their scores
// are blended.
type Route struct {
	Name    string   `yaml:"name"`
	Sources []Source `yaml:"sources"`
	// Fallback overrides Config.Fallback for this route.
	Fallback string `yaml:"fallback,omitempty"`
}

// Source is one candidate generator of a route.
type Source struct {
	Model string `yaml:"model"`
	// Weight scales the source's normalised scores in the blend; default 1.
	Weight float64 `yaml:"weight,omitempty"`
	// Candidates is how many items to take from the source; default 2k.
	Candidates int `yaml:"candidates,omitempty"`
}

// DefaultConfig is used when a repository has no routes.yaml: one route
// answered by the fallback model, which also scores.
func DefaultConfig() Config {
	return Config{
		DefaultRoute:   DefaultRouteName,
		DefaultScorer:  DefaultFallback,
		Fallback:       DefaultFallback,
		DefaultSimilar: DefaultSimilarModel,
		Routes:         []Route{{Name: DefaultRouteName, Sources: []Source{{Model: DefaultFallback, Weight: 1}}}},
	}
}

// LoadConfig reads path strictly (unknown keys are errors) and validates it.
// A missing file yields DefaultConfig.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%s: empty file", path)
		}
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks internal consistency and fills defaults. Whether the named
// models exist is checked per request, so a model may be deployed after its
// route.
func (c *Config) Validate() error {
	if c.Fallback == "" {
		c.Fallback = DefaultFallback
	}
	if len(c.Routes) == 0 {
		return errors.New("routes: at least one route is required")
	}
	seen := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Name == "" {
			return fmt.Errorf("routes[%d].name: required", i)
		}
		if seen[r.Name] {
			return fmt.Errorf("routes[%d].name: duplicate route %q", i, r.Name)
		}
		seen[r.Name] = true
		if len(r.Sources) == 0 {
			return fmt.Errorf("routes[%d].sources: route %q needs at least one source", i, r.Name)
		}
		for j := range r.Sources {
			s := &r.Sources[j]
			if s.Model == "" {
				return fmt.Errorf("routes[%d].sources[%d].model: required", i, j)
			}
			if s.Weight == 0 {
				s.Weight = 1
			}
			if s.Weight < 0 || s.Candidates < 0 {
				return fmt.Errorf("routes[%d].sources[%d]: weight and candidates must be non-negative", i, j)
			}
			if math.IsNaN(s.Weight) || math.IsInf(s.Weight, 0) {
				return fmt.Errorf("routes[%d].sources[%d]: weight %v must be finite", i, j, s.Weight)
			}
		}
	}
	if c.DefaultRoute == "" {
		c.DefaultRoute = c.Routes[0].Name
	}
	if !seen[c.DefaultRoute] {
		return fmt.Errorf("default_route: no route named %q", c.DefaultRoute)
	}
	if c.DefaultScorer == "" {
		c.DefaultScorer = c.Fallback
	}
	if c.DefaultSimilar == "" {
		c.DefaultSimilar = DefaultSimilarModel
	}
	return nil
}

// clone returns a deep copy, so a Config handed to the router shares no
// slices with its caller.
func (c Config) clone() Config {
	c.Routes = slices.Clone(c.Routes)
	for i := range c.Routes {
		c.Routes[i].Sources = slices.Clone(c.Routes[i].Sources)
	}
	return c
}

func (c *Config) route(name string) (*Route, bool) {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i], true
		}
	}
	return nil, false
}
