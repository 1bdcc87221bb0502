package serving

import (
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
)

// repoModels lends the router model versions from the repository: it is the
// router.Models of a Stack. The router owns the small interface it needs
// (router.Lease) and knows nothing of repository.Loaded; this adapter is the
// one place the two meet.
type repoModels struct{ repo *repository.Repository }

var _ router.Models = repoModels{}

// Acquire lends the version of name serving unit (the repository's stable
// version, or its canary for the units in the canary's share).
func (m repoModels) Acquire(name, unit string) (router.Lease, error) {
	l, canary, err := m.repo.AcquireRole(name, unit)
	if err != nil {
		return nil, err // an untyped nil: no Lease holding a nil *Loaded
	}
	if canary {
		return canaryLease{lease{l}}, nil
	}
	return lease{l}, nil
}

// lease is a router.Lease over an acquired stable repository version, and
// canaryLease over a canary. Each being one pointer, it is stored in the
// interface as is: lending a version allocates nothing.
type lease struct{ l *repository.Loaded }

func (x lease) Model() models.Model { return x.l.Model }
func (x lease) Version() string     { return x.l.Version }
func (x lease) Kind() string        { return x.l.Spec.Kind }
func (x lease) Canary() bool        { return false }
func (x lease) Release()            { x.l.Release() }

type canaryLease struct{ lease }

func (canaryLease) Canary() bool { return true }
