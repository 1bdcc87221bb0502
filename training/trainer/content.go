package trainer

import (
	"context"
	"errors"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// fitContent is a placeholder until the content trainer lands.
func fitContent(_ context.Context, _ *dataset.Dataset, _ Params, _ string) (models.Spec, error) {
	return models.Spec{}, errors.New("content trainer: not implemented yet")
}
