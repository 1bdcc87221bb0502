package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/recserve/recserve/models"
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
	// ErrConflict reports a request that contradicts what serves, such as
	// making the stable version its own canary.
	ErrConflict = errors.New("conflicts with what serves")
)

// invalid returns a *models.FieldError naming the argument at fault
// ("name", "version" or "path" of an upload's file), wrapping
// ErrInvalidName, so a server names the request field without parsing
// messages.
func invalid(arg, format string, a ...any) error {
	return &models.FieldError{Field: arg, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidName}, a...)...)}
}

// DeployOptions says what Commit does with a validated version.
type DeployOptions struct {
	// Activate makes the version the stable one.
	Activate bool
	// CanaryPercent in (0, 100) makes the version the canary, taking that
	// share of traffic (sticky per user); 0 leaves it inactive unless
	// Activate is set.
	CanaryPercent float64
}

// Activate makes version the stable version of name (canaryPercent 0), or
// its canary taking canaryPercent of traffic (sticky per user), after
// loading and validating it. Promoting the serving canary reuses it without a
// reload. version "latest" returns the model to the latest policy. The choice
// is written to the model's policy.yaml before it takes effect, so a restart
// serves the same versions. On error nothing serving changed.
func (r *Repository) Activate(ctx context.Context, name, version string, canaryPercent float64) (Info, error) {
	if version != PolicyLatest {
		if err := checkName("version", version); err != nil {
			return Info{}, err
		}
	} else if canaryPercent > 0 {
		return Info{}, invalid("version", `"latest" cannot be a canary`)
	}
	if !(canaryPercent >= 0 && canaryPercent < 100) {
		return Info{}, fmt.Errorf("canary_percent: %v is not in [0, 100)", canaryPercent)
	}
	return r.change(ctx, name, func(e *entry) error {
		if version != PolicyLatest {
			return r.activate(ctx, e, version, nil, canaryPercent)
		}
		pol := e.policy
		if s := e.serving.Load(); s != nil {
			pol.pushHistory(s.stable.Version)
		}
		pol.VersionPolicy, pol.Stable, pol.Canary, pol.CanaryPercent, pol.Unloaded = PolicyLatest, "", "", 0, false
		if err := writePolicy(r.modelDir(name), pol); err != nil {
			return err
		}
		r.reconcile(ctx, name)
		return nil
	})
}

// change runs op on the entry of name under the admin lock and describes the
// model afterwards. A version that failed validation is recorded as the
// model's last error; refused requests (nothing to roll back to, ...) are
// the caller's answer, not the model's state.
func (r *Repository) change(ctx context.Context, name string, op func(e *entry) error) (Info, error) {
	if err := checkName("name", name); err != nil {
		return Info{}, err
	}
	r.admin.Lock()
	defer r.admin.Unlock()
	e, err := r.adminEntry(ctx, name)
	if err != nil {
		return Info{}, err
	}
	if err := op(e); err != nil {
		if errors.Is(err, ErrRejected) {
			r.recordErr(e, err)
		}
		return Info{}, err
	}
	return r.Info(name)
}

// apply records pol in policy.yaml, then makes next what e serves: the
// file first, so a crash in between restarts into the state asked for.
func (r *Repository) apply(e *entry, pol Policy, next *serving) error {
	if err := writePolicy(r.modelDir(e.name), pol); err != nil {
		return fmt.Errorf("model %s: record the policy: %w", e.name, err)
	}
	r.publish(e, next)
	versions, _ := scanVersions(r.modelDir(e.name))
	r.setMeta(e, versions, pol, nil, next)
	return nil
}

// activate is Activate under admin. inst, if set, is the already loaded and
// validated version (a deploy); it is retired on error.
func (r *Repository) activate(ctx context.Context, e *entry, version string, inst *Loaded, pct float64) (err error) {
	cur := e.serving.Load()
	var curStable, curCanary *Loaded
	if cur != nil {
		curStable, curCanary = cur.stable, cur.canary
	}
	l := inst
	fresh := inst != nil // l is ours to retire on error
	switch {
	case l != nil:
	case curStable != nil && curStable.Version == version:
		l = curStable
	case curCanary != nil && curCanary.Version == version:
		l = curCanary
	default:
		var err error
		if l, err = r.loadOnDisk(ctx, e.name, version); err != nil {
			return err
		}
		fresh = true
	}
	defer func() {
		if err != nil && fresh {
			l.retire()
		}
	}()
	pol := e.policy
	pol.VersionPolicy, pol.Unloaded = PolicySpecific, false
	var next *serving
	if pct == 0 {
		switch {
		case curStable != nil && curStable != l:
			if err := sameRoles(l, curStable); err != nil {
				return fmt.Errorf("%w: %w", ErrRejected, err)
			}
			pol.pushHistory(curStable.Version)
		case curStable == nil && pol.Stable != "" && pol.Stable != version:
			pol.pushHistory(pol.Stable)
		}
		pol.Stable, pol.Canary, pol.CanaryPercent = version, "", 0
		next = &serving{stable: l}
	} else {
		switch {
		case curStable == nil:
			return fmt.Errorf("model %s serves no stable version to split traffic with: activate one first: %w", e.name, models.ErrNotReady)
		case curStable == l:
			return fmt.Errorf("model %s version %s is the stable version, it cannot also be the canary: %w", e.name, version, ErrConflict)
		}
		if err := sameRoles(l, curStable); err != nil {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
		pol.Stable, pol.Canary, pol.CanaryPercent = curStable.Version, version, pct
		next = &serving{stable: curStable, canary: l, canaryPct: pct, salt: canarySalt(e.name, version)}
	}
	if err := r.apply(e, pol, next); err != nil {
		return err
	}
	r.log.Info("model version activated", "model", e.name, "version", version, "canary_percent", pct)
	return nil
}

// Rollback undoes the last change of what name serves: it removes the
// canary if there is one, and otherwise makes the previous stable version
// (from the policy's history, else the next older version on disk) stable
// again. Rolling back twice goes back twice.
func (r *Repository) Rollback(ctx context.Context, name string) (Info, error) {
	return r.change(ctx, name, func(e *entry) error { return r.rollback(ctx, e) })
}

func (r *Repository) rollback(ctx context.Context, e *entry) error {
	cur := e.serving.Load()
	pol := e.policy
	if cur == nil {
		return fmt.Errorf("model %s serves nothing: %w", e.name, ErrNoRollback)
	}
	if cur.canary != nil || pol.Canary != "" {
		pol.VersionPolicy, pol.Stable, pol.Canary, pol.CanaryPercent = PolicySpecific, cur.stable.Version, "", 0
		if err := r.apply(e, pol, &serving{stable: cur.stable}); err != nil {
			return err
		}
		r.log.Info("model canary rolled back", "model", e.name, "canary", versionOf(cur.canary))
		return nil
	}
	versions, err := scanVersions(r.modelDir(e.name))
	if err != nil {
		return err
	}
	target := ""
	hist := slices.Clone(pol.History)
	for len(hist) > 0 && target == "" {
		v := hist[len(hist)-1]
		hist = hist[:len(hist)-1]
		if v != cur.stable.Version && slices.Contains(versions, v) {
			target = v
		}
	}
	if target == "" {
		if i := slices.Index(versions, cur.stable.Version); i > 0 {
			target = versions[i-1]
		}
	}
	if target == "" {
		return fmt.Errorf("model %s: version %s has no earlier version: %w", e.name, cur.stable.Version, ErrNoRollback)
	}
	l, err := r.loadOnDisk(ctx, e.name, target)
	if err != nil {
		return fmt.Errorf("roll back to %s: %w", target, err)
	}
	if err := sameRoles(l, cur.stable); err != nil {
		l.retire()
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	pol.VersionPolicy, pol.Stable, pol.History, pol.Unloaded = PolicySpecific, target, hist, false
	if err := r.apply(e, pol, &serving{stable: l}); err != nil {
		l.retire()
		return err
	}
	r.log.Info("model rolled back", "model", e.name, "from", cur.stable.Version, "to", target)
	return nil
}

// Unload stops serving name and closes its versions once they drain. The
// versions stay on disk; Activate serves one again. Unloading is recorded in
// policy.yaml, so it survives a restart.
func (r *Repository) Unload(ctx context.Context, name string) (Info, error) {
	return r.change(ctx, name, func(e *entry) error {
		pol := e.policy
		if s := e.serving.Load(); s != nil {
			pol.VersionPolicy, pol.Stable = PolicySpecific, s.stable.Version
		}
		pol.Canary, pol.CanaryPercent, pol.Unloaded = "", 0, true
		if err := r.apply(e, pol, nil); err != nil {
			return err
		}
		r.log.Info("model unloaded", "model", name)
		return nil
	})
}

// adminEntry returns the entry of a model for a lifecycle operation,
// loading a model directory created since the last Sync. Called under admin.
func (r *Repository) adminEntry(ctx context.Context, name string) (*entry, error) {
	if r.closed {
		return nil, errClosed
	}
	if e, err := r.lookup(name); err == nil {
		return e, nil
	}
	if st, err := os.Stat(r.modelDir(name)); err != nil || !st.IsDir() {
		return nil, &models.FieldError{Field: "name", Err: fmt.Errorf("model %q: %w", name, models.ErrNotFound)}
	}
	r.reconcile(ctx, name)
	return r.lookup(name)
}

// loadOnDisk loads and validates a version of the repository for an
// operator's request: a failure is ErrRejected.
func (r *Repository) loadOnDisk(ctx context.Context, name, version string) (*Loaded, error) {
	dir := filepath.Join(r.modelDir(name), version)
	if _, err := os.Stat(dir); err != nil {
		return nil, &models.FieldError{Field: "version", Err: fmt.Errorf("model %s version %s: %w", name, version, models.ErrNotFound)}
	}
	fp, err := fingerprintDir(dir)
	if err != nil {
		return nil, err
	}
	l, _, err := r.load(ctx, name, version, dir, fp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return l, nil
}

// recordErr keeps err as the model's last error for Info.
func (r *Repository) recordErr(e *entry, err error) {
	r.mu.Lock()
	e.err = err
	r.mu.Unlock()
}

func (r *Repository) modelDir(name string) string { return filepath.Join(r.opts.Dir, name) }

// checkName reports a model name or version that could escape the
// repository or collide with its hidden directories.
func checkName(field, s string) error {
	switch {
	case s == "":
		return invalid(field, "required")
	case len(s) > 128:
		return invalid(field, "longer than 128 bytes")
	case s[0] == '.' || s[0] == '_' || s[0] == '-':
		return invalid(field, "%q starts with %q", s, s[:1])
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid(field, "%q has %q (allowed: letters, digits, '.', '_', '-')", s, c)
		}
	}
	return nil
}
