package trainer

import (
	"context"
	"errors"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// fitUserKNN is a placeholder until the userknn trainer lands.
func fitUserKNN(_ context.Context, _ *dataset.Dataset, _ Params, _ string) (models.Spec, error) {
	return models.Spec{}, errors.New("userknn trainer: not implemented yet")
}
