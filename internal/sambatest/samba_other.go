//go:build !linux

package sambatest

import (
	"errors"
	"runtime"
	"testing"
)

type process struct{ pid int }

func start(t testing.TB) *Server {
	t.Helper()
	unavailable(t, "Samba AD DC tests run on Linux only, not on "+runtime.GOOS)
	return nil
}

func (s *Server) launch() error { return errors.New("sambatest: Linux only") }

func (s *Server) stop() error { return nil }
