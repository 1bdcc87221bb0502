// Package models defines what every recserve model family shares: the
// Recommender and Scorer roles, the query a model answers, the model.yaml
// specification of a model version, and the table of model kinds that turns a
// version directory into a live model.
//
// Model families live in sub-packages (popularity, knn, content, gbm, linear,
// onnx) and never import the gRPC layer; the router and the offline evaluator
// call them through the interfaces declared here, so the server and `recctl
// eval` run the very same code.
package models

import (
	"context"

	"github.com/recserve/recserve/dataset"
)

// Scored is an item with the score a model gave it. Scores are comparable only
// within one model's answer.
type Scored struct {
	ItemID string
	Score  float64
}

// Query is everything a model sees of one request. It is built by the router
// and never modified by models.
type Query struct {
	// UserID is empty for an anonymous session.
	UserID string
	// History is the user's known interactions, oldest first, followed by the
	// request's session items (as views). It may be empty (cold start).
	History []dataset.Interaction
	// Session is the request's session items, oldest first; they are also
	// the last len(Session) entries of History.
	Session []string
	// K is how many items the caller wants; models return at most K.
	K int
	// Allow reports whether an item may be returned; nil allows every item.
	// Models apply it while selecting the top K, so filtered items do not
	// shrink the answer.
	Allow func(itemID string) bool
	// Context is the request's free key/value context.
	Context map[string]string
}

// Allowed reports whether q permits itemID.
func (q *Query) Allowed(itemID string) bool { return q.Allow == nil || q.Allow(itemID) }

// Model is a loaded model version. Close releases its resources (native
// sessions, memory maps); it is called once, after the version has drained.
type Model interface {
	Close() error
}

// Recommender is a model that ranks items for a query. Implementations are safe
// for concurrent use.
type Recommender interface {
	// Recommend returns at most q.K allowed items, best first.
	Recommend(ctx context.Context, q Query) ([]Scored, error)
}

// Scorer is a model that scores given items for a query (for example a
// purchase probability). Implementations are safe for concurrent use.
type Scorer interface {
	// Score returns one score per item, in the order of itemIDs.
	Score(ctx context.Context, q Query, itemIDs []string) ([]float64, error)
}

// SimilarQuery asks for the items most similar to one item.
type SimilarQuery struct {
	ItemID string
	// K is how many items the caller wants; models return at most K.
	K int
	// Allow reports whether an item may be returned; nil allows every item.
	// The query item itself is never returned.
	Allow func(itemID string) bool
}

// Allowed reports whether q permits itemID.
func (q *SimilarQuery) Allowed(itemID string) bool { return q.Allow == nil || q.Allow(itemID) }

// ItemSimilarity is a model that finds items similar to an item (item-kNN
// neighbours, content similarity). Implementations are safe for concurrent
// use.
type ItemSimilarity interface {
	// SimilarItems returns at most q.K allowed items, most similar first. An
	// item the model does not know is an error wrapping ErrNotFound.
	SimilarItems(ctx context.Context, q SimilarQuery) ([]Scored, error)
}

// InputExplainer is a model whose input is a transformation of the history
// worth seeing when debugging (an ONNX model's sequence or user vector):
// ExplainInput returns the item ids the model reads for q, in input order.
// Requests with debug on show it, so a tracked event can be seen reaching
// the model.
type InputExplainer interface {
	ExplainInput(q Query) []string
}

// Roles lists what m can do: "recommender", "scorer", "similar_items".
func Roles(m Model) []string {
	var roles []string
	if _, ok := m.(Recommender); ok {
		roles = append(roles, "recommender")
	}
	if _, ok := m.(Scorer); ok {
		roles = append(roles, "scorer")
	}
	if _, ok := m.(ItemSimilarity); ok {
		roles = append(roles, "similar_items")
	}
	return roles
}
