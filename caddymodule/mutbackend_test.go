package caddymodule

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// mutBackend is a test-only backend (loginshare.backends.testmut) for the
// mutation tests, beside testfake so that file stays as it is. Modes:
//
//   - accept: every credential is right, whatever bytes it holds, so a
//     request that reaches it succeeds: a check that should have stopped the
//     request shows as a success and a counted call.
//   - gate: the call announces itself on the name's gate, then waits
//     (ignoring ctx, like a misbehaving directory) until the test releases
//     it, and answers invalid credentials. Tests wait for the event, not the clock.
//   - panic_text: answers an error whose Error method panics, so the panic
//     happens wherever the handler reads the error's text, outside the
//     backend call.
type mutBackend struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
}

var mutCalls sync.Map // name → *atomic.Int64

var nameSeq atomic.Int64

// uniqueName makes backend names (and so call counters and gates) distinct
// per run, so these tests also pass with -count=N.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

func mutCount(name string) int64 {
	v, _ := mutCalls.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

// gate is how a test meets a gate-mode call: entered receives once per call
// that has started; closing release lets every call answer.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

var gates sync.Map // name → *gate

// gateFor returns the gate of name, creating it on first use.
func gateFor(name string) *gate {
	v, _ := gates.LoadOrStore(name, &gate{entered: make(chan struct{}, 16), release: make(chan struct{})})
	return v.(*gate)
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func init() { caddy.RegisterModule(new(mutBackend)) }

func (*mutBackend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "loginshare.backends.testmut", New: func() caddy.Module { return new(mutBackend) }}
}

func (m *mutBackend) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for d.NextBlock(0) {
		switch d.Val() {
		case "name":
			d.Args(&m.Name)
		case "mode":
			d.Args(&m.Mode)
		default:
			return d.Errf("unknown testmut option %q", d.Val())
		}
	}
	return nil
}

// panicText is an error whose text cannot be read.
type panicText struct{}

func (panicText) Error() string { panic("internal detail of a broken error type") }

func (m *mutBackend) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	v, _ := mutCalls.LoadOrStore(m.Name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	switch m.Mode {
	case "gate":
		g := gateFor(m.Name)
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-time.After(30 * time.Second): // a broken test must not hang the binary
		}
		return backends.Identity{}, backends.ErrInvalidCredentials
	case "panic_text":
		return backends.Identity{}, panicText{}
	}
	return backends.Identity{
		Username: c.Username, FullName: "Accepted " + c.Username,
		Emails: []string{"accepted@example.com"},
		Groups: []backends.Group{{Name: "helpdesk-users"}, {Name: "helpdesk-staff"}},
	}, nil
}
