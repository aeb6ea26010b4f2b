package scaleout

import (
	"context"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// countingBackend appends "<tag> <username>\n" to a file shared by every
// Caddy process of the test for each login that reaches it, so the test
// counts backend calls across processes. Password "right" logs in.
type countingBackend struct {
	File string `json:"file"`
	Tag  string `json:"tag"`
}

func init() { caddy.RegisterModule(new(countingBackend)) }

func (*countingBackend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "loginshare.backends.scaleoutcount", New: func() caddy.Module { return new(countingBackend) }}
}

func (b *countingBackend) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for d.NextBlock(0) {
		switch d.Val() {
		case "file":
			if !d.Args(&b.File) {
				return d.ArgErr()
			}
		case "tag":
			if !d.Args(&b.Tag) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown option %q", d.Val())
		}
	}
	return nil
}

func (b *countingBackend) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	f, err := os.OpenFile(b.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "count file: %v", err)
	}
	_, err = f.WriteString(b.Tag + " " + c.Username + "\n") // one write: O_APPEND keeps lines whole
	f.Close()
	if err != nil {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "count file: %v", err)
	}
	if err := backends.Gate(ctx, c.Username); err != nil {
		return backends.Identity{}, err
	}
	if c.Password != "right" {
		return backends.Identity{}, backends.ErrInvalidCredentials
	}
	return backends.Identity{Username: c.Username, FullName: "Test " + c.Username,
		Emails: []string{c.Username + "@example.com"}, Groups: []backends.Group{{Name: "helpdesk-users"}}}, nil
}
