// Package builtin registers every model kind recserve ships, so the server,
// the evaluator and the CLI build models from one table.
package builtin

import (
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/models/gbm"
	"github.com/recserve/recserve/models/itemknn"
	"github.com/recserve/recserve/models/linear"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/userknn"
)

// Kinds returns a table holding every built-in model kind.
func Kinds() *models.Kinds {
	k := models.NewKinds()
	for kind, b := range map[string]models.Builder{
		popularity.Kind: popularity.Build,
		itemknn.Kind:    itemknn.Build,
		userknn.Kind:    userknn.Build,
		content.Kind:    content.Build,
		gbm.Kind:        gbm.Build,
		linear.Kind:     linear.Build,
	} {
		if err := k.Register(kind, b); err != nil {
			panic(err) // unreachable: the literal above has unique keys
		}
	}
	return k
}
