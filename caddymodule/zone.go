package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// throttleConfig applies the defaults to the handler's throttle options. ok
// is false when throttling is off.
func (h *Handler) throttleConfig() (cfg throttle.Config, ok bool, err error) {
	t := h.Throttle
	if t != nil && t.Off {
		return cfg, false, nil
	}
	cfg = throttle.Config{
		PerUser: defaultThrottlePerUser, PerIP: defaultThrottlePerIP,
		UserWindow: defaultThrottleWindow, IPWindow: defaultThrottleWindow,
		Ban: defaultThrottleBan, MaxKeys: defaultThrottleMaxKeys,
	}
	if t != nil {
		if t.PerUser != nil {
			cfg.PerUser = *t.PerUser
		}
		if t.PerIP != nil {
			cfg.PerIP = *t.PerIP
		}
		if t.PerUserWindow != 0 {
			cfg.UserWindow = time.Duration(t.PerUserWindow)
		}
		if t.PerIPWindow != 0 {
			cfg.IPWindow = time.Duration(t.PerIPWindow)
		}
		if t.Ban != 0 {
			cfg.Ban = time.Duration(t.Ban)
		}
		if t.MaxKeys != 0 {
			cfg.MaxKeys = t.MaxKeys
		}
	}
	if cfg.PerUser < 0 || cfg.PerIP < 0 || cfg.UserWindow < 0 || cfg.IPWindow < 0 || cfg.Ban < 0 || cfg.MaxKeys < 0 {
		return cfg, false, errors.New("throttle: values must not be negative")
	}
	return cfg, cfg.PerUser > 0 || cfg.PerIP > 0, nil
}

// checkZoneName is the rule for a zone name, in the Caddyfile and in JSON:
// printable text without spaces, so it reads well in logs and store keys.
func checkZoneName(z string) error {
	if z == "" || len(z) > 64 {
		return fmt.Errorf("throttle zone %q: want 1 to 64 characters", z)
	}
	for _, r := range z {
		if r <= ' ' || r == 0x7f || r == '|' {
			return fmt.Errorf("throttle zone %q: no spaces, control characters or '|'", z)
		}
	}
	return nil
}

// provisionThrottle finds or makes the throttle state of the handler's zone.
// It must run before the backends are loaded: the default zone is a digest
// of their JSON, which loading releases.
func (h *Handler) provisionThrottle(ctx caddy.Context) error {
	cfg, on, err := h.throttleConfig()
	if err != nil {
		return err
	}
	if !on {
		h.logger.Warn("throttle is off: nothing limits password guessing, and every guess reaches the directory (Active Directory counts them towards lockout)",
			zap.Bool("throttle_off", h.Throttle != nil && h.Throttle.Off))
		return nil
	}
	// The store module is loaded first: LoadModule clears StoreRaw, and its
	// JSON (as a digest: it may hold a password) is part of the settings, so
	// a memory zone and a Redis zone never share state, and handlers naming
	// one zone must agree on the store too.
	var provider throttle.Provider = MemoryStore{}
	storeID := ""
	if h.Throttle != nil && len(h.Throttle.StoreRaw) > 0 {
		raw := h.Throttle.StoreRaw
		mod, err := ctx.LoadModule(h.Throttle, "StoreRaw")
		if err != nil {
			return fmt.Errorf("loading throttle store: %w", err)
		}
		p, ok := mod.(throttle.Provider)
		if !ok {
			return fmt.Errorf("throttle store %T is not a throttle store", mod)
		}
		provider = p
		// What the JSON leaves open (resolved placeholders) counts too.
		sum := sha256.New()
		sum.Write(raw)
		if k, ok := p.(interface{ StateKey() string }); ok {
			sum.Write([]byte("|" + k.StateKey()))
		}
		storeID = hex.EncodeToString(sum.Sum(nil)[:12])
		if _, mem := p.(*MemoryStore); mem {
			storeID = "" // `store memory` is the default, spelled out
		}
	}
	settings := fmt.Sprintf("%+v", cfg)
	if storeID != "" {
		settings += " store=" + storeID
	}
	if h.Throttle != nil && h.Throttle.Zone != "" {
		if err := checkZoneName(h.Throttle.Zone); err != nil {
			return err
		}
		h.zone = "zone-" + h.Throttle.Zone
		claim, err := claimZone(h.zone, settings, ctx.Done())
		if err != nil {
			return err
		}
		h.zoneClaim = claim
	} else {
		h.zone = h.defaultZone(settings)
	}
	// State is shared by every handler of the zone with these settings, in
	// this config and across reloads, so a reload keeps counters and bans.
	key := h.zone + "|" + settings
	zone := h.zone
	v, _, err := throttleStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := provider.NewStore(zone, cfg, throttle.StoreOptions{
			Lease:  time.Duration(h.Timeout) + 5*time.Second,
			Logger: h.logger,
			OnOutage: func(down bool) {
				if down {
					throttleStoreOutages.WithLabelValues(zone).Inc()
					throttleStoreDown.WithLabelValues(zone).Set(1)
				} else {
					throttleStoreDown.WithLabelValues(zone).Set(0)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		mem, _ := s.(*throttle.Memory)
		if mem == nil {
			throttleStoreDown.WithLabelValues(zone).Set(0)
		}
		return throttleEntry{store: s, Memory: mem, zone: zone}, nil
	})
	if err != nil {
		return err
	}
	h.throttle = v.(throttleEntry).store
	h.throttleKey = key // set only once the reference is held
	return nil
}

// defaultZone names the state of handlers equal in everything that makes an
// endpoint what it is: paths, callers (allow_from and secret as written, so
// no resolved secret is hashed into a name that could be logged), backend
// chains and throttle settings. One endpoint under two host names shares
// state; two unrelated sites never do.
func (h *Handler) defaultZone(settings string) string {
	sum := sha256.New()
	enc := json.NewEncoder(sum)
	_ = enc.Encode([]any{h.UserPath, h.StaffPath, h.AllowFrom, h.Secret,
		h.BackendsRaw, h.UserBackendsRaw, h.StaffBackendsRaw, settings})
	return "auto-" + hex.EncodeToString(sum.Sum(nil)[:12])
}

// A zoneClaim is one handler's use of a named zone within one config.
type zoneClaim struct {
	zone     string
	settings string
	config   <-chan struct{} // the config's context: equal for every module of one config
}

var (
	zonesMu sync.Mutex
	zones   = map[*zoneClaim]struct{}{}
)

// claimZone registers a handler's use of a named zone and refuses unequal
// settings for one zone within one config. Handlers of another config (the
// one being replaced by a reload) may use other settings: the new config's
// zone gets state of its own.
func claimZone(zone, settings string, config <-chan struct{}) (*zoneClaim, error) {
	zonesMu.Lock()
	defer zonesMu.Unlock()
	for c := range zones {
		if c.zone == zone && c.config == config && c.settings != settings {
			return nil, fmt.Errorf("throttle zone %q is used with different throttle settings (%s and %s); handlers sharing a zone must have equal settings",
				zone, c.settings, settings)
		}
	}
	c := &zoneClaim{zone: zone, settings: settings, config: config}
	zones[c] = struct{}{}
	return c, nil
}

func releaseZone(c *zoneClaim) {
	zonesMu.Lock()
	delete(zones, c)
	zonesMu.Unlock()
}

// throttleStores keeps throttle state across config reloads, keyed by zone
// and settings.
var throttleStores = caddy.NewUsagePool()

// testClock, when set by tests before provisioning, drives new throttle stores.
var testClock func() time.Time

// throttleEntry is one zone's state. For a shared store (Redis) the counts
// live in Redis, not here: the keys and bans gauges report Memory entries
// only.
type throttleEntry struct {
	store throttle.Store
	// Memory is the same store when it is the memory one, else nil.
	Memory *throttle.Memory
	zone   string // for metrics
}

// Destruct closes a store that holds resources (a share of a Redis client).
func (e throttleEntry) Destruct() error {
	if c, ok := e.store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
