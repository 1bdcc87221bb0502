// Package content provides the content model kind. (Work in progress: the builder
// rejects every version until the model lands.)
package content

import (
	"context"
	"errors"

	"github.com/recserve/recserve/models"
)

// Kind is the model.yaml kind of this family.
const Kind = "content"

// Build is the models.Builder of this kind.
func Build(_ context.Context, _ models.Env, _ models.Version) (models.Model, error) {
	return nil, errors.New("content: not implemented yet")
}
