package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

func init() { caddy.RegisterModule(new(MemoryStore)) }

// MemoryStore is the throttle store kept in this instance's memory (the
// default): `throttle { store memory }`. Each Caddy instance counts on its
// own; several instances need a shared store (redis).
type MemoryStore struct{}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "loginshare.throttle.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// NewStore implements throttle.Provider.
func (MemoryStore) NewStore(_ string, cfg throttle.Config, _ throttle.StoreOptions) (throttle.Store, error) {
	return newMemory(cfg), nil
}

func newMemory(cfg throttle.Config) *throttle.Memory {
	s := throttle.New(cfg)
	if testClock != nil {
		s.SetClock(testClock)
	}
	return s
}

// UnmarshalCaddyfile reads `store memory`, which takes no options.
func (MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("store memory takes no options, not %q", d.Val())
	}
	return nil
}

var (
	_ throttle.Provider     = MemoryStore{}
	_ caddyfile.Unmarshaler = MemoryStore{}
)
