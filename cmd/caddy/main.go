// Command caddy is Caddy with the standard modules and the LoginShare plugin,
// for `go run ./cmd/caddy run --config Caddyfile.example` and for tests.
// Production builds use xcaddy (see README).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/kayako-loginshare/caddy-loginshare"
)

func main() {
	caddycmd.Main()
}
