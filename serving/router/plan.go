package router

import (
	"fmt"
	"slices"

	"github.com/recserve/recserve/internal/bucket"
	"github.com/recserve/recserve/models"
)

// plan is a resolved request: the route (nil for a model override), its arm,
// the sources to run and the fallback chain.
type plan struct {
	name, arm string
	route     *Route
	sources   []Source
	fallbacks []string
}

// resolve picks the plan for req: a model override, a named route, the first
// matching rule (a route or an experiment arm), or the default route. events
// is the user's stored history length (for the new/known user rules).
func (r *Router) resolve(cfg *Config, req Request, events int) (plan, error) {
	if req.Model != "" {
		l, err := r.models.Acquire(req.Model, unit(req.UserID, req.SessionItems))
		if err != nil {
			return plan{}, &models.FieldError{Field: "model", Err: err}
		}
		_, ok := l.Model.(models.Recommender)
		l.Release()
		if !ok {
			return plan{}, fieldErr("model", "model %q (kind %s) cannot recommend", req.Model, l.Spec.Kind)
		}
		return plan{name: "model:" + req.Model, sources: []Source{{Model: req.Model, Weight: 1}},
			fallbacks: []string{cfg.Fallback}}, nil
	}
	name, arm := req.Route, ""
	if name == "" {
		name = cfg.DefaultRoute
		for _, rule := range cfg.Rules {
			if !rule.matches(req, events, cfg.NewUserEvents) {
				continue
			}
			name = rule.Route
			if rule.Experiment != "" {
				e, _ := cfg.experiment(rule.Experiment) // Validate checked it exists
				a := e.assign(assignmentKey(req))
				name, arm = a.Route, e.Name+"/"+a.Name
			}
			break
		}
	}
	rt, ok := cfg.route(name)
	if !ok {
		return plan{}, &models.FieldError{Field: "route", Err: fmt.Errorf("route %q: %w", name, models.ErrNotFound)}
	}
	chain := slices.Clone([]string(rt.Fallback))
	if !slices.Contains(chain, cfg.Fallback) {
		chain = append(chain, cfg.Fallback)
	}
	return plan{name: rt.Name, arm: arm, route: rt, sources: rt.Sources, fallbacks: chain}, nil
}

// matches reports whether the rule applies to req from a user with events
// stored events.
func (rule *Rule) matches(req Request, events, newUserEvents int) bool {
	for key, want := range rule.Context {
		got, ok := req.Context[key]
		if !ok || want != "*" && got != want {
			return false
		}
	}
	switch rule.User {
	case UserAnonymous:
		return req.UserID == ""
	case UserNew:
		return req.UserID != "" && events < newUserEvents
	case UserKnown:
		return req.UserID != "" && events >= newUserEvents
	}
	return true
}

// assignmentKey identifies the shopper for arm assignment: the user id, or
// for an anonymous session its first item, so a session keeps its arm.
func assignmentKey(req Request) string {
	if req.UserID != "" {
		return "u:" + req.UserID
	}
	return "s:" + req.SessionItems[0]
}

// assign picks the arm of key: bucket.Percent of salt and key matched
// against the arms' cumulative percents, so every replica agrees.
func (e *Experiment) assign(key string) Arm {
	x := bucket.Percent(e.Salt, key)
	var cum float64
	for _, a := range e.Arms {
		cum += a.Percent
		if x < cum {
			return a
		}
	}
	return e.Arms[len(e.Arms)-1]
}

// Arm returns the arm of experiment name a user (or an anonymous session
// starting with sessionItem) is assigned to, as Recommend assigns it.
func (c *Config) Arm(experiment, userID, sessionItem string) (string, error) {
	e, ok := c.experiment(experiment)
	if !ok {
		return "", fmt.Errorf("experiment %q: %w", experiment, models.ErrNotFound)
	}
	return e.assign(assignmentKey(Request{UserID: userID, SessionItems: []string{sessionItem}})).Name, nil
}
