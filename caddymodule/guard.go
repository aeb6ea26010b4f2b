package caddymodule

import (
	"context"
	"errors"
	"slices"
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

	// bg is the request's context without its cancellation: reservations
	// are reserved and settled under it even after the answer was sent.
	bg context.Context

	mu        sync.Mutex
	settled   bool
	res       []throttle.Reservation // usually the typed one and the account's
	resBuf    [2]throttle.Reservation
	keys      []string // user keys reserved; resBuf-sized in the common case
	keyBuf    [2]string
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
	g.res = append(g.resBuf[:0], r)
	g.keys = append(g.keyBuf[:0], g.typedKey)
	return nil
}

// gate is the backends.GateFunc of this login.
func (g *guard) gate(canonical string) error {
	ctx := g.bg
	key := throttle.UserKey(canonical, g.staff)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.settled {
		return errLate
	}
	g.canonical = canonical
	if key == "" || slices.Contains(g.keys, key) {
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
	g.keys = append(g.keys, key)
	g.res = append(g.res, r)
	backends.Trace(ctx, "throttle", "attempt also counted under the account", "account", canonical)
	return nil
}

// settle commits every reservation when the outcome counts as a failed
// guess and releases them otherwise; it reports whether a ban started.
func (g *guard) settle(class backends.Class) bool {
	ctx := g.bg
	g.mu.Lock()
	g.settled = true
	res, keys := g.res, g.keys
	g.res = nil
	// A success clears only the account that logged in: a name typed for
	// one account can reach another (an e-mail login, a UPN), and clearing
	// the typed name's counter would let anyone who can log in somewhere
	// reset the budget of the account whose name they typed.
	account := ""
	if g.canonical != "" {
		account = throttle.UserKey(g.canonical, g.staff)
	}
	g.mu.Unlock()
	started := false
	if class.CountsAsFailure() && len(res) > 0 {
		throttleEvent(g.h.zone, "failure") // one guess, however many buckets
	}
	for i, r := range res {
		var err error
		if class.CountsAsFailure() {
			var s bool
			s, err = r.Commit(ctx)
			if s {
				throttleEvent(g.h.zone, "ban")
			}
			started = started || s
		} else {
			err = r.Release(ctx, class == backends.OK && (account == "" || keys[i] == account))
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
