package trainer

import (
	"context"
	"errors"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// fitItemKNN is a placeholder until the itemknn trainer lands.
func fitItemKNN(_ context.Context, _ *dataset.Dataset, _ Params, _ string) (models.Spec, error) {
	return models.Spec{}, errors.New("itemknn trainer: not implemented yet")
}
