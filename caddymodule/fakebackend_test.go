package caddymodule

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// fakeBackend is a test-only backend for what real backends cannot do on
// demand: panic, take a chosen time per outcome, count calls.
type fakeBackend struct {
	// Name keys the call counter in fakeCalls.
	Name string `json:"name"`
	// Panic makes every call panic.
	Panic bool `json:"panic,omitempty"`
	// Unavailable makes every call answer the unavailable class.
	Unavailable bool `json:"unavailable,omitempty"`
	// Block makes every call wait for its context to end.
	Block bool `json:"block,omitempty"`
	// Users: username → password; known users get groups helpdesk-users.
	Users map[string]string `json:"users,omitempty"`
	// Stubborn makes every call take this long, ignoring ctx (a misbehaving backend).
	Stubborn caddy.Duration `json:"stubborn,omitempty"`
	// Hold makes every call take this long (ctx-aware) before answering.
	Hold caddy.Duration `json:"hold,omitempty"`
	// Delays per outcome, to show that timing is equalised.
	UnknownDelay caddy.Duration `json:"unknown_delay,omitempty"`
	WrongDelay   caddy.Duration `json:"wrong_delay,omitempty"`
}

var fakeCalls sync.Map // name → *atomic.Int64

// fakeNoGroups counts calls whose context said groups are not needed.
var fakeNoGroups sync.Map // name → *atomic.Int64

// In-flight fake calls now and at most (reset by tests that read it).
var fakeInFlight, fakeMaxInFlight atomic.Int64

func fakeCount(name string) int64 {
	v, _ := fakeCalls.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func init() {
	caddy.RegisterModule(new(fakeBackend))
	caddy.RegisterModule(new(promptFakeBackend))
}

func (*fakeBackend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "loginshare.backends.testfake", New: func() caddy.Module { return new(fakeBackend) }}
}

// promptFakeBackend (testfakeprompt) is fakeBackend declaring itself
// backends.Prompt, so the handler asks it on the request's goroutine; tests
// that hold for both paths run with each module. Its stubborn option breaks
// the promise and is not used with it.
type promptFakeBackend struct{ fakeBackend }

func (*promptFakeBackend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "loginshare.backends.testfakeprompt", New: func() caddy.Module { return new(promptFakeBackend) }}
}

func (*promptFakeBackend) ReturnsPromptly() {}

// fakeModules are the fake's two module names: on its own goroutine and on
// the request's.
var fakeModules = []string{"testfake", "testfakeprompt"}

func (f *fakeBackend) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for d.NextBlock(0) {
		switch d.Val() {
		case "name":
			d.Args(&f.Name)
		case "panic":
			f.Panic = true
		case "unavailable":
			f.Unavailable = true
		case "block":
			f.Block = true
		case "user":
			var u, p string
			d.Args(&u, &p)
			if f.Users == nil {
				f.Users = map[string]string{}
			}
			f.Users[u] = p
		case "unknown_delay", "wrong_delay", "hold", "stubborn":
			opt := d.Val()
			var v string
			d.Args(&v)
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.WrapErr(err)
			}
			switch opt {
			case "unknown_delay":
				f.UnknownDelay = caddy.Duration(dur)
			case "wrong_delay":
				f.WrongDelay = caddy.Duration(dur)
			case "stubborn":
				f.Stubborn = caddy.Duration(dur)
			default:
				f.Hold = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown testfake option %q", d.Val())
		}
	}
	return nil
}

func (f *fakeBackend) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	v, _ := fakeCalls.LoadOrStore(f.Name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	if !backends.NeedGroups(ctx) {
		v, _ := fakeNoGroups.LoadOrStore(f.Name, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	n := fakeInFlight.Add(1)
	defer fakeInFlight.Add(-1)
	for {
		m := fakeMaxInFlight.Load()
		if n <= m || fakeMaxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.Stubborn > 0 {
		time.Sleep(time.Duration(f.Stubborn))
	}
	if f.Hold > 0 {
		sleepCtx(ctx, time.Duration(f.Hold))
		if ctx.Err() != nil {
			return backends.Identity{}, backends.Errorf(backends.Unavailable, "deadline: %w", ctx.Err())
		}
	}
	switch {
	case f.Panic:
		panic("internal detail that must never reach Kayako")
	case f.Unavailable:
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "fake directory down")
	case f.Block:
		<-ctx.Done()
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "deadline: %w", ctx.Err())
	}
	pw, ok := f.Users[c.Username]
	if !ok {
		sleepCtx(ctx, time.Duration(f.UnknownDelay))
		return backends.Identity{}, backends.ErrUnknownUser
	}
	// Like a real backend: the account is found, so the gate decides
	// before the password is compared.
	if err := backends.Gate(ctx, c.Username); err != nil {
		return backends.Identity{}, err
	}
	if pw != c.Password {
		sleepCtx(ctx, time.Duration(f.WrongDelay))
		return backends.Identity{}, backends.ErrInvalidCredentials
	}
	return backends.Identity{
		Username: c.Username, FullName: "Fake " + c.Username,
		Emails: []string{c.Username + "@example.com"},
		Groups: []backends.Group{{Name: "helpdesk-users"}, {Name: "helpdesk-staff"}},
	}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
