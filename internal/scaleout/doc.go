// Package scaleout holds the test of several Caddy processes sharing one
// throttle in Redis (scale-out spec): the test binary runs as Caddy, twice.
// It has no code of its own.
package scaleout
