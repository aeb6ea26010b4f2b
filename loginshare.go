// Package loginshare is a Caddy v2 plugin that answers Kayako's LoginShare
// callbacks: it authenticates helpdesk users and staff against LDAP / Active
// Directory or static accounts and writes the XML document Kayako expects.
//
// Importing this package registers every module of the plugin:
//
//	xcaddy build --with github.com/kayako-loginshare/caddy-loginshare
//
// Modules: http.handlers.loginshare (Caddyfile directive "loginshare"),
// loginshare.backends.ldap, loginshare.backends.sql, loginshare.backends.static,
// loginshare.throttle.stores.memory and loginshare.throttle.stores.redis. Command:
// `caddy loginshare` (see loginsharecmd).
package loginshare

import (
	_ "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
	_ "github.com/kayako-loginshare/caddy-loginshare/backends/sql"
	_ "github.com/kayako-loginshare/caddy-loginshare/backends/static"
	_ "github.com/kayako-loginshare/caddy-loginshare/caddymodule"
	_ "github.com/kayako-loginshare/caddy-loginshare/internal/throttle/redisstore"
	_ "github.com/kayako-loginshare/caddy-loginshare/loginsharecmd"
)
