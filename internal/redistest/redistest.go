// Package redistest runs a real redis-server for tests: on a free loopback
// port, with its data in the test's temporary directory and the append-only
// file fsynced on every write, so tests can kill it, restart it on the same
// port and directory, and check that what Redis acknowledged survived.
//
// It is a test helper in a non-test package so that every package testing
// against Redis shares it. Tests fail, never skip, when redis-server is not
// installed: a missing server must not turn a durability test green.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start and Restart wait for the server to
// answer PING (loading a large AOF on restart counts).
const startTimeout = 30 * time.Second

// Option changes how Start runs the server.
type Option func(*config)

type config struct {
	args []string
}

// Args appends redis-server command-line arguments (for example
// Args("--appendfsync", "everysec")); later arguments override the defaults.
func Args(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is a redis-server process owned by one test. Its methods are safe
// for concurrent use; they fail the test (t.Fatal) on error, so call them
// from the test goroutine.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// Start runs redis-server on a free loopback port with --dir t.TempDir(),
// --appendonly yes, --appendfsync always and --save "" (no RDB snapshots),
// waits until it answers PING, and stops it (SIGKILL) when the test ends.
// It fails the test if redis-server is not on PATH.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (%v): install it, e.g. `apt-get install redis-server`", err)
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: c.args}
	t.Cleanup(s.cleanup)
	// The port is picked by listening on :0 and closing; another process
	// may take it before redis-server binds, so retry a few times.
	var lastErr error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns redis://host:port/0, the form redisstore.Open takes.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir returns the server's data directory (the append-only files live in
// Dir()/appendonlydir).
func (s *Server) Dir() string { return s.dir }

// Stop ends the server with SIGTERM and waits for it to exit: a clean
// shutdown that flushes the append-only file.
func (s *Server) Stop() {
	s.t.Helper()
	s.signal(syscall.SIGTERM)
}

// Kill ends the server with SIGKILL and waits for it to exit: a crash, after
// which only what reached the append-only file survives.
func (s *Server) Kill() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
}

// Restart starts the server again on the same port and directory, so it
// reloads its append-only file, and waits until it answers PING. The server
// must have been stopped or killed.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("redistest: Restart of a running server; Stop or Kill it first")
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("redistest: server is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v: %v", sig, err)
	}
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("redistest: redis-server did not exit on %v within %v", sig, startTimeout)
	}
}

// start runs the process and waits for PING; on failure the process is
// killed and the error carries the server's log.
func (s *Server) start() error {
	if s.log == nil {
		f, err := os.Create(filepath.Join(s.dir, "redis.log"))
		if err != nil {
			return err
		}
		s.log = f
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--save", "",
		"--daemonize", "no",
		"--loglevel", "warning",
	}
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitPing(s.Addr(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on port %d: %w; log:\n%s", s.port, err, s.logText())
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

func (s *Server) logText() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

func (s *Server) cleanup() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
	if s.log != nil {
		_ = s.log.Close()
	}
}

// waitPing polls addr with PING until it answers +PONG (not -LOADING), the
// process exits, or startTimeout passes.
func waitPing(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited before answering PING (last error: %v)", last)
		default:
		}
		if last = ping(addr); last == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %v: %w", startTimeout, last)
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("+PONG")) {
		return fmt.Errorf("PING answered %q", bytes.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
