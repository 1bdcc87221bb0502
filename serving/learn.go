package serving

import (
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/store"
)

// learner is the live store's Observer: it hands what the store applied to
// every serving model version that learns online (models.InteractionLearner,
// models.CatalogueLearner), so popularity counts and the content model's
// catalogue follow the shop between trainings.
//
// It is bound late: Open opens the store before the repository, and the
// store reports nothing of what it read at start-up, so the only changes a
// learner misses are those a shared backend's other replicas make while
// Open loads the models. Likewise a version deployed later starts from its
// trained state: it learns what arrives once it serves, not what arrived
// before (the next training run counts that). It is safe for concurrent
// use.
type learner struct {
	repo atomic.Pointer[repository.Repository]
}

var _ store.Observer = (*learner)(nil)

// bind sets the repository whose versions learn.
func (l *learner) bind(r *repository.Repository) { l.repo.Store(r) }

// Interactions implements store.Observer.
func (l *learner) Interactions(in []dataset.Interaction) {
	r := l.repo.Load()
	if r == nil || len(in) == 0 {
		return
	}
	r.EachServing(func(v *repository.Loaded) {
		if m, ok := v.Model.(models.InteractionLearner); ok {
			m.LearnInteractions(in)
		}
	})
}

// Items implements store.Observer.
func (l *learner) Items(upserted []dataset.Item, deleted []string) {
	r := l.repo.Load()
	if r == nil || len(upserted)+len(deleted) == 0 {
		return
	}
	r.EachServing(func(v *repository.Loaded) {
		if m, ok := v.Model.(models.CatalogueLearner); ok {
			m.LearnItems(upserted, deleted)
		}
	})
}
