package caddymodule

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// guard is one login's throttle reservations: the typed keys, reserved
// before any backend is asked, and the canonical accounts the backends
// report through the gate before they verify a password. The backend work
// may outlive the answer (a backend ignoring its deadline), so the gate and
// settle synchronise, and a gate call after settle reserves nothing.
type guard struct {
	h        *Handler
	staff    bool
	typedKey string
	ipKey    string

	mu        sync.Mutex
	settled   bool
	res       []throttle.Reservation
	keys      map[string]bool
	canonical string // the last account name the gate saw
}

// errLate answers a gate call that comes after the login was answered.
var errLate = backends.Errorf(backends.Throttled, "the login was already answered")

// reserve takes the typed keys' reservation.
func (g *guard) reserve(ctx context.Context) error {
	r, err := g.h.throttle.Reserve(ctx, throttle.Keys{User: g.typedKey, IP: g.ipKey})
	if err != nil {
		if errors.Is(err, throttle.ErrThrottled) {
			throttleEvent(g.h.zone, "refused")
		}
		return err
	}
	g.res = append(g.res, r)
	g.keys = map[string]bool{g.typedKey: true}
	return nil
}

// gate is the backends.GateFunc of this login.
func (g *guard) gate(ctx context.Context) backends.GateFunc {
	return func(canonical string) error {
		key := throttle.UserKey(canonical, g.staff)
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.settled {
			return errLate
		}
		g.canonical = canonical
		if key == "" || g.keys[key] {
			return nil
		}
		r, err := g.h.throttle.Reserve(ctx, throttle.Keys{User: key})
		if err != nil {
			if errors.Is(err, throttle.ErrThrottled) {
				throttleEvent(g.h.zone, "refused")
				return backends.Errorf(backends.Throttled, "account %q: %v", canonical, err)
			}
			return backends.Errorf(backends.Unavailable, "throttle store: %v", err)
		}
		g.keys[key] = true
		g.res = append(g.res, r)
		backends.Trace(ctx, "throttle", "attempt also counted under the account", "account", canonical)
		return nil
	}
}

// settle commits every reservation when the outcome counts as a failed
// guess and releases them otherwise; it reports whether a ban started.
func (g *guard) settle(ctx context.Context, class backends.Class) bool {
	g.mu.Lock()
	g.settled = true
	res := g.res
	g.res = nil
	g.mu.Unlock()
	started := false
	if class.CountsAsFailure() && len(res) > 0 {
		throttleEvent(g.h.zone, "failure") // one guess, however many buckets
	}
	for _, r := range res {
		var err error
		if class.CountsAsFailure() {
			var s bool
			s, err = r.Commit(ctx)
			if s {
				throttleEvent(g.h.zone, "ban")
			}
			started = started || s
		} else {
			err = r.Release(ctx, class == backends.OK)
		}
		if err != nil {
			g.h.logger.Warn("throttle store failed to record an attempt", zap.Error(err))
		}
	}
	return started
}

// account returns the canonical name the gate saw, if any.
func (g *guard) account() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.canonical
}
