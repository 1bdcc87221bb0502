package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv is the environment variable naming the onnxruntime shared
// library; it overrides the search FindLibrary does.
const LibraryEnv = "ONNXRUNTIME_LIB"

// LibraryFile is where `make ort` puts the library, relative to the
// repository root.
const LibraryFile = ".ort/libonnxruntime.so.1"

// ErrNoLibrary reports that no onnxruntime shared library was found or that
// it failed to load; ONNX models cannot be served, Go-native models can.
var ErrNoLibrary = errors.New("onnxruntime library not loaded")

// FindLibrary returns the onnxruntime shared library to load: $ONNXRUNTIME_LIB
// when set (returned as is; NewRuntime reports a missing file), else the first
// existing LibraryFile under the working directory or one of its parents, the
// executable's directory or its parent (bin/recserve finds the repository's
// .ort/). Servers and tools call it once at start-up; nothing runs it
// implicitly. The error wraps ErrNoLibrary and lists where it looked.
func FindLibrary() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		return p, nil
	}
	var tried []string
	try := func(dir string) (string, bool) {
		p := filepath.Join(dir, LibraryFile)
		tried = append(tried, p)
		st, err := os.Stat(p)
		return p, err == nil && st.Mode().IsRegular()
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if p, ok := try(dir); ok {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if p, ok := try(d); ok {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no %s in the working directory, its parents or beside the executable (%d places tried) and %s is not set",
		ErrNoLibrary, LibraryFile, len(tried), LibraryEnv)
}

// env is onnxruntime's environment. onnxruntime_go keeps it in process-global
// variables (one library handle, one OrtEnv), so this guard is the one piece
// of package-level state here: it reference-counts the environment across
// every Runtime and every loaded model, so that two Runtimes in one process
// (tests, a server and a tool) share it and the last release destroys it.
var env struct {
	mu      sync.Mutex
	refs    int
	path    string
	version string
}

// acquireEnv initialises the environment from path on first use, or counts
// one more user of the environment already loaded from the same path.
func acquireEnv(path string) (version string, err error) {
	if st, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoLibrary, err)
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a file", ErrNoLibrary, path)
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs > 0 {
		if env.path != path {
			return "", fmt.Errorf("%w: onnxruntime is already loaded from %s; one process cannot also load %s", ErrNoLibrary, env.path, path)
		}
		env.refs++
		return env.version, nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrNoLibrary, path, err)
	}
	env.refs, env.path, env.version = 1, path, ort.GetVersion()
	return env.version, nil
}

// releaseEnv drops one user; the last one destroys the environment and
// unloads the library.
func releaseEnv() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs <= 0 {
		return nil
	}
	env.refs--
	if env.refs > 0 {
		return nil
	}
	env.path, env.version = "", ""
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("onnxruntime: destroy environment: %w", err)
	}
	return nil
}

// Runtime is a loaded onnxruntime library: the onnx kind's builder needs one
// to create sessions. Create it once at start-up with NewRuntime and Close it
// at exit, after the models (a model still loaded keeps the library loaded
// until it is closed, so the order is not a correctness matter). It is safe
// for concurrent use.
type Runtime struct {
	path    string
	version string

	mu     sync.Mutex
	closed bool
}

// NewRuntime loads the onnxruntime shared library at path (see FindLibrary)
// and initialises its environment. onnxruntime_go supports one library per
// process: a second Runtime from the same path shares the environment (it is
// destroyed when the last Runtime and model are closed); one from another
// path is an error. Errors wrap ErrNoLibrary.
func NewRuntime(path string) (*Runtime, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty library path", ErrNoLibrary)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	v, err := acquireEnv(path)
	if err != nil {
		return nil, err
	}
	return &Runtime{path: path, version: v}, nil
}

// Open finds the library with FindLibrary and loads it with NewRuntime: what
// the server and the CLI call once at start-up.
func Open() (*Runtime, error) {
	path, err := FindLibrary()
	if err != nil {
		return nil, err
	}
	return NewRuntime(path)
}

// Version is the onnxruntime version string (ort.GetVersion), logged by the
// server at start-up.
func (r *Runtime) Version() string { return r.version }

// Path is the shared library the runtime loaded.
func (r *Runtime) Path() string { return r.path }

// acquire keeps the environment alive for one model; the model calls
// releaseEnv when it closes.
func (r *Runtime) acquire() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%w: the runtime is closed", ErrNoLibrary)
	}
	_, err := acquireEnv(r.path)
	return err
}

// Close releases the runtime's hold on the environment; the environment is
// destroyed once every Runtime and every model built on it is closed. Close
// is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return releaseEnv()
}
