package repository

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/recserve/recserve/models"
)

// stagingDir is the hidden directory of the repository uploads are written
// into; being inside the repository keeps the final rename on one file
// system, hence atomic.
const stagingDir = ".staging"

// Upload is a version being uploaded: files are written into a hidden staging
// directory of the repository, and Commit validates the version and renames
// the directory into place, so a version directory is never seen half
// written. An Upload is used by one goroutine.
type Upload struct {
	r             *Repository
	name, version string
	dir           string
	size          int64
	files         map[string]bool
	cur           *os.File
	curPath       string
	err           error // sticky: the first failed Write
	done          bool
}

// Name is the model the upload is for.
func (u *Upload) Name() string { return u.name }

// Version is the version directory the upload becomes.
func (u *Upload) Version() string { return u.version }

// NewUpload starts an upload of a version of model name. version must be a
// positive integer (so the latest policy orders versions numerically); ""
// picks the next integer after the newest version on disk.
func (r *Repository) NewUpload(name, version string) (*Upload, error) {
	if err := checkName("name", name); err != nil {
		return nil, err
	}
	if version != "" {
		if n, err := strconv.ParseUint(version, 10, 63); err != nil || n == 0 || strconv.FormatUint(n, 10) != version {
			return nil, invalid("version", "%q is not a positive integer without leading zeros", version)
		}
	}
	versions, err := scanVersions(r.modelDir(name))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if version == "" {
		var max uint64
		for _, v := range versions {
			if n, err := strconv.ParseUint(v, 10, 63); err == nil {
				max = maxU(max, n)
			}
		}
		for key := range r.reserved {
			if n, v, ok := strings.Cut(key, "/"); ok && n == name {
				if x, err := strconv.ParseUint(v, 10, 63); err == nil {
					max = maxU(max, x)
				}
			}
		}
		version = strconv.FormatUint(max+1, 10)
	}
	key := name + "/" + version
	if r.reserved[key] {
		return nil, fmt.Errorf("model %s version %s: another upload of it is in progress: %w", name, version, ErrExists)
	}
	if _, err := os.Stat(filepath.Join(r.modelDir(name), version)); err == nil {
		return nil, fmt.Errorf("model %s version %s: %w", name, version, ErrExists)
	}
	if err := os.MkdirAll(filepath.Join(r.opts.Dir, stagingDir), 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(r.opts.Dir, stagingDir), name+"-"+version+"-*")
	if err != nil {
		return nil, err
	}
	r.reserved[key] = true
	return &Upload{r: r, name: name, version: version, dir: dir, files: map[string]bool{}}, nil
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Write appends data to the file at p (slash-separated, relative to the
// version directory). The chunks of one file are consecutive; a path that
// escapes the version directory, names a hidden file, or comes back after
// another file was started is refused, as is anything over the repository's
// size and file-count limits. After an error the upload is dead: Abort it.
func (u *Upload) Write(p string, data []byte) error {
	if u.err != nil {
		return u.err
	}
	if u.done {
		return errors.New("upload already committed or aborted")
	}
	u.err = u.write(p, data)
	return u.err
}

func (u *Upload) write(p string, data []byte) error {
	if u.cur == nil || p != u.curPath {
		if err := checkPath(p); err != nil {
			return err
		}
		if u.files[p] {
			return invalid("path", "chunks of %q are not consecutive", p)
		}
		if len(u.files) >= u.r.opts.MaxUploadFiles {
			return fmt.Errorf("%w: more than %d files", ErrTooLarge, u.r.opts.MaxUploadFiles)
		}
		if err := u.closeCur(); err != nil {
			return err
		}
		full := filepath.Join(u.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		u.cur, u.curPath = f, p
		u.files[p] = true
	}
	if u.size+int64(len(data)) > u.r.opts.MaxUploadBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, u.r.opts.MaxUploadBytes)
	}
	u.size += int64(len(data))
	_, err := u.cur.Write(data)
	return err
}

// checkPath refuses upload paths that could land outside the version
// directory or in the repository's hidden files.
func checkPath(p string) error {
	switch {
	case p == "":
		return invalid("path", "required")
	case strings.ContainsAny(p, "\\\x00"):
		return invalid("path", "%q has a backslash or NUL", p)
	case path.IsAbs(p) || path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)):
		return invalid("path", "%q is not a clean path inside the version directory", p)
	}
	for _, part := range strings.Split(p, "/") {
		if strings.HasPrefix(part, ".") {
			return invalid("path", "%q has a hidden or relative component %q", p, part)
		}
	}
	return nil
}

// closeCur syncs and closes the file being written.
func (u *Upload) closeCur() error {
	if u.cur == nil {
		return nil
	}
	f := u.cur
	u.cur, u.curPath = nil, ""
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Abort removes the staging directory and frees the version number. It is
// safe to call more than once and after Commit.
func (u *Upload) Abort() {
	if u.cur != nil {
		u.cur.Close()
		u.cur = nil
	}
	if !u.done {
		u.done = true
		os.RemoveAll(u.dir)
		u.r.mu.Lock()
		delete(u.r.reserved, u.name+"/"+u.version)
		u.r.mu.Unlock()
	}
}

// Commit validates the upload, renames it into <repo>/<name>/<version>, and
// does what o says: activate it as stable, make it the canary, or leave it on
// disk for a later Activate. A version that is not activated does not serve,
// even under the latest policy: the model's policy is pinned to what serves
// now. On error nothing serving changed and the upload is removed.
func (r *Repository) Commit(ctx context.Context, u *Upload, o DeployOptions) (Info, error) {
	defer u.Abort()
	if u.err != nil {
		return Info{}, u.err
	}
	if u.done {
		return Info{}, errors.New("upload already committed or aborted")
	}
	if err := u.closeCur(); err != nil {
		return Info{}, err
	}
	if o.Activate && o.CanaryPercent != 0 {
		return Info{}, errors.New("activate and canary_percent: choose one")
	}
	if !(o.CanaryPercent >= 0 && o.CanaryPercent < 100) {
		return Info{}, fmt.Errorf("canary_percent: %v is not in [0, 100)", o.CanaryPercent)
	}
	if _, err := os.Stat(filepath.Join(u.dir, models.SpecFile)); errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: the upload has no %s", ErrRejected, models.SpecFile)
	}
	fp, err := fingerprintDir(u.dir)
	if err != nil {
		return Info{}, err
	}
	// Load and validate outside the admin lock: a slow model does not hold
	// up other changes. Renaming keeps relative paths and times, so fp
	// stays the fingerprint of the final directory.
	l, _, err := r.load(ctx, u.name, u.version, u.dir, fp)
	if err != nil {
		// Name files as they would be in the repository, not by the
		// server's staging path.
		err = &stagedError{err: err, dir: u.dir, name: u.name + "/" + u.version}
		r.recordErrByName(u.name, err)
		return Info{}, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	r.admin.Lock()
	defer r.admin.Unlock()
	if r.closed {
		l.retire()
		return Info{}, errClosed
	}
	modelDir := r.modelDir(u.name)
	final := filepath.Join(modelDir, u.version)
	if _, err := os.Stat(final); err == nil {
		l.retire()
		return Info{}, fmt.Errorf("model %s version %s: %w", u.name, u.version, ErrExists)
	}
	e, err := r.lookup(u.name)
	if err != nil {
		if _, serr := os.Stat(modelDir); serr == nil {
			// Created by another replica since the last Sync: load what is
			// there before the new version appears in it.
			r.reconcile(ctx, u.name)
			e, err = r.lookup(u.name)
		}
	}
	// activate checks the roles too, but only after the rename: a version
	// that cannot replace the serving one must not reach the disk.
	if err == nil && (o.Activate || o.CanaryPercent > 0) {
		if s := e.serving.Load(); s != nil {
			if err := sameRoles(l, s.stable); err != nil {
				l.retire()
				r.recordErr(e, err)
				return Info{}, fmt.Errorf("%w: %w", ErrRejected, err)
			}
		}
	}
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		l.retire()
		return Info{}, err
	}
	if err := os.Rename(u.dir, final); err != nil {
		l.retire()
		return Info{}, err
	}
	syncDir(modelDir)
	u.done = true
	r.mu.Lock()
	delete(r.reserved, u.name+"/"+u.version)
	r.mu.Unlock()
	r.log.Info("model version deployed", "model", u.name, "version", u.version, "bytes", u.size, "files", len(u.files))

	if e == nil {
		e = r.entry(u.name)
	}
	switch {
	case o.Activate || o.CanaryPercent > 0:
		if err := r.activate(ctx, e, u.version, l, o.CanaryPercent); err != nil {
			r.recordErr(e, err)
			return Info{}, err
		}
	default:
		l.retire()
		if err := r.pin(e); err != nil {
			return Info{}, err
		}
	}
	return r.Info(u.name)
}

// pin keeps what e serves now when a version is deployed without being
// activated: under the latest policy the new version would otherwise serve
// at the next Sync or restart, unvalidated by anyone's decision.
func (r *Repository) pin(e *entry) error {
	pol := e.policy
	s := e.serving.Load()
	if !pol.specific() {
		pol.VersionPolicy = PolicySpecific
		if s != nil {
			pol.Stable = s.stable.Version
		} else {
			pol.Unloaded = true
		}
	}
	return r.apply(e, pol, s)
}

// recordErrByName records err on an existing model; a rejected first upload
// of a model leaves no trace.
func (r *Repository) recordErrByName(name string, err error) {
	if e, lerr := r.lookup(name); lerr == nil {
		r.recordErr(e, err)
	}
}

// stagedError reports an error about an upload's staging directory with
// paths relative to the repository.
type stagedError struct {
	err       error
	dir, name string
}

func (e *stagedError) Error() string { return strings.ReplaceAll(e.err.Error(), e.dir, e.name) }
func (e *stagedError) Unwrap() error { return e.err }

// syncDir flushes a directory entry change (a rename) to disk; failures only
// weaken durability, so they are ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
