package router

import "github.com/recserve/recserve/models"

// Models lends the router the version of a model that serves a traffic
// unit (the stable version, or a canary for the units in its share). It is
// all the router needs of a model repository, so the router depends on no
// repository: serving adapts models/repository to it, and tests lend fakes.
// Implementations must be safe for concurrent use.
type Models interface {
	// Acquire lends the version of model name that serves unit (see unit).
	// The error wraps models.ErrNotFound for an unknown model and
	// models.ErrNotReady for one with no loaded version.
	Acquire(name, unit string) (Lease, error)
}

// Lease is one model version lent to a request by Models.Acquire. The
// router releases every Lease exactly once, when the request is done with
// the model (which, for a source past its timeout, is when the model
// returns): a version swapped out meanwhile is closed only after its last
// Lease is released, so no request sees its model closed under it.
type Lease interface {
	// Model is the version's model; the router finds its roles
	// (Recommender, Scorer, ...) by type assertion.
	Model() models.Model
	// Version is the version's id, reported in responses and metrics so a
	// canary can be compared with its stable version.
	Version() string
	// Kind is the model's kind (model.yaml), named in errors when a model
	// lacks the role a request needs.
	Kind() string
	// Canary reports whether the version is the model's canary (lent to
	// the units in its share), so answers record it.
	Canary() bool
	// Release ends the loan; the Lease must not be used afterwards.
	Release()
}

// unit is the traffic unit a request belongs to, for sticky canaries: the
// user, or an anonymous session by its first item; "" when neither is known.
func unit(userID string, session []string) string {
	switch {
	case userID != "":
		return "u:" + userID
	case len(session) > 0:
		return "s:" + session[0]
	}
	return ""
}
