package repository

import (
	"context"
	"errors"
)

// Lifecycle errors; callers test them with errors.Is. The server maps them to
// gRPC statuses.
var (
	// ErrInvalidName reports a model name, version or upload file path that is
	// not allowed (empty, hidden, with a separator, escaping its directory).
	ErrInvalidName = errors.New("invalid name")
	// ErrExists reports a deploy of a version that is already on disk.
	ErrExists = errors.New("already exists")
	// ErrTooLarge reports an upload over Options.MaxUploadBytes or
	// Options.MaxUploadFiles.
	ErrTooLarge = errors.New("upload too large")
	// ErrRejected reports a version that failed validation (it does not load,
	// has the wrong signature, gives non-finite outputs, or changes the roles
	// of the version serving): nothing serving was touched.
	ErrRejected = errors.New("model version rejected")
	// ErrNoRollback reports a Rollback with nothing to go back to.
	ErrNoRollback = errors.New("nothing to roll back to")
)

// DeployOptions says what Commit does with a validated version.
type DeployOptions struct {
	// Activate makes the version the stable one.
	Activate bool
	// CanaryPercent in (0, 100) makes the version the canary, taking that
	// share of traffic (sticky per user); 0 leaves it inactive unless
	// Activate is set.
	CanaryPercent float64
}

var errTODO = errors.New("not implemented yet")

// Upload is a version being uploaded: files are written into a hidden staging
// directory of the repository, and Commit validates and renames it into place.
type Upload struct {
	name, version string
}

// Name is the model the upload is for.
func (u *Upload) Name() string { return u.name }

// Version is the version directory the upload will become.
func (u *Upload) Version() string { return u.version }

// NewUpload starts an upload of a version of model name. version "" picks the
// next integer after the newest version on disk.
func (r *Repository) NewUpload(name, version string) (*Upload, error) { return nil, errTODO }

// Write appends data to the file at path (slash-separated, relative to the
// version directory). Consecutive writes to one path append.
func (u *Upload) Write(path string, data []byte) error { return errTODO }

// Abort removes the staging directory. It is safe to call after Commit.
func (u *Upload) Abort() {}

// Commit validates the upload, renames it into <repo>/<name>/<version>, and
// activates it as o says. On error nothing serving changed and the staging
// directory is removed.
func (r *Repository) Commit(ctx context.Context, u *Upload, o DeployOptions) (Info, error) {
	return Info{}, errTODO
}

// Activate makes version the stable version of name (canaryPercent 0) or its
// canary at that percent, after validating it. version "latest" returns the
// model to the latest policy.
func (r *Repository) Activate(ctx context.Context, name, version string, canaryPercent float64) (Info, error) {
	return Info{}, errTODO
}

// Rollback removes the canary if there is one, else makes the previous stable
// version stable again.
func (r *Repository) Rollback(ctx context.Context, name string) (Info, error) { return Info{}, errTODO }

// Unload stops serving name; its versions stay on disk and ActivateVersion
// loads one again. It persists across restarts.
func (r *Repository) Unload(ctx context.Context, name string) (Info, error) { return Info{}, errTODO }

// Sync rescans the repository directory and applies what changed on disk:
// new models and versions, edited policy files, removed models (poll mode).
func (r *Repository) Sync(ctx context.Context) error { return errTODO }

// Acquire returns the version of name serving unit (the user): the canary for
// the units in its share, else the stable version. The caller must Release
// it; a version swapped out meanwhile is closed after its last Release.
func (r *Repository) Acquire(name, unit string) (*Loaded, error) { return r.Get(name) }

// Release ends an Acquire.
func (l *Loaded) Release() {}
