package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// do sends one command in RESP and returns the first reply line.
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		line, err = r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	return strings.TrimSpace(line)
}

// TestRestartKeepsAcknowledgedWrites checks that each way of stopping the
// server keeps a write that was answered, and that a stopped server refuses
// connections.
func TestRestartKeepsAcknowledgedWrites(t *testing.T) {
	tests := []struct {
		name string
		stop func(*Server)
	}{
		{"SIGTERM", (*Server).Stop},
		{"SIGKILL", (*Server).Kill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t)
			if got := do(t, s.Addr(), "SET", "k", "v1"); got != "+OK" {
				t.Fatalf("SET = %q; want +OK", got)
			}
			tt.stop(s)
			if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
				c.Close()
				t.Fatalf("dial %s after stop succeeded; want refused", s.Addr())
			}
			s.Restart()
			if got := do(t, s.Addr(), "GET", "k"); got != "v1" {
				t.Errorf("GET k after restart = %q; want v1", got)
			}
			if got := s.URL(); got != "redis://"+s.Addr()+"/0" {
				t.Errorf("URL() = %q", got)
			}
		})
	}
}
