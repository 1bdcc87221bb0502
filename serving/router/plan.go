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
	route     *route
	sources   []Source
	fallbacks []string
}

// resolve picks the plan for req from the table t: a model override, a named
// route, the first matching rule (a route or an experiment arm), or the
// default route. events is the user's stored history length (for the
// new/known user rules).
func (r *Router) resolve(t *table, req Request, events int) (plan, error) {
	if req.Model != "" {
		l, err := r.models.Acquire(req.Model, unit(req.UserID, req.SessionItems))
		if err != nil {
			return plan{}, &models.FieldError{Field: "model", Err: err}
		}
		_, ok := l.Model().(models.Recommender)
		kind := l.Kind()
		l.Release()
		if !ok {
			return plan{}, fieldErr("model", "model %q (kind %s) cannot recommend", req.Model, kind)
		}
		return plan{name: "model:" + req.Model, sources: []Source{{Model: req.Model, Weight: 1}},
			fallbacks: t.modelFallbacks}, nil
	}
	var rt *route
	arm := ""
	if req.Route != "" {
		var ok bool
		if rt, ok = t.routes[req.Route]; !ok {
			return plan{}, &models.FieldError{Field: "route", Err: fmt.Errorf("route %q: %w", req.Route, models.ErrNotFound)}
		}
	} else {
		rt = t.defaultRoute
		for i := range t.rules {
			ru := &t.rules[i]
			if !ru.matches(req, events, t.cfg.NewUserEvents) {
				continue
			}
			rt = ru.route
			if e := ru.experiment; e != nil {
				a := e.assign(assignmentKey(req))
				rt, arm = e.routes[a], e.labels[a]
			}
			break
		}
	}
	return plan{name: rt.Name, arm: arm, route: rt, sources: rt.Sources, fallbacks: rt.fallbacks}, nil
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

// assign picks the arm of key, as an index into e.Arms: bucket.Percent of
// salt and key matched against the arms' cumulative percents, so every
// replica agrees.
func (e *Experiment) assign(key string) int {
	x := bucket.Percent(e.Salt, key)
	var cum float64
	for i, a := range e.Arms {
		cum += a.Percent
		if x < cum {
			return i
		}
	}
	return len(e.Arms) - 1
}

// Arm returns the arm of experiment name a user (or an anonymous session
// starting with sessionItem) is assigned to, as Recommend assigns it.
func (c *Config) Arm(experiment, userID, sessionItem string) (string, error) {
	i := slices.IndexFunc(c.Experiments, func(e Experiment) bool { return e.Name == experiment })
	if i < 0 {
		return "", fmt.Errorf("experiment %q: %w", experiment, models.ErrNotFound)
	}
	e := &c.Experiments[i]
	return e.Arms[e.assign(assignmentKey(Request{UserID: userID, SessionItems: []string{sessionItem}}))].Name, nil
}
