package caddymodule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// Collectors are created once and registered on every config's registry
// (Caddy hands each config load a new one).
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "requests_total",
		Help:      "LoginShare requests by endpoint (user|staff) and outcome class.",
	}, []string{"endpoint", "outcome"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "request_duration_seconds",
		Help:      "Time to answer a LoginShare request, failure delay included.",
		Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"endpoint", "outcome"})
)

var (
	backendDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "backend_duration_seconds",
		Help:      "A backend's share of a login, by backend name and outcome class.",
		Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"backend", "outcome"})
	throttleEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "throttle_events_total",
		Help:      "Throttle events by zone and kind: failure (a failed guess counted), ban (a ban started), refused (an attempt refused).",
	}, []string{"zone", "kind"})
	// The keys and bans gauges cover zones whose state is in this instance's
	// memory; a shared (Redis) store's counts are in Redis.
	throttleBansDesc = prometheus.NewDesc("caddy_loginshare_throttle_bans",
		"Active bans in the zone's throttle state (memory store only).", []string{"zone"}, nil)
	throttleKeysDesc = prometheus.NewDesc("caddy_loginshare_throttle_keys",
		"Failure counters the zone's throttle state tracks (memory store only).", []string{"zone"}, nil)
	throttleStoreOutages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "throttle_store_outages_total",
		Help:      "Outages of the zone's shared throttle store (Redis): each time it stops answering and on_error takes over.",
	}, []string{"zone"})
	throttleStoreDown = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "loginshare",
		Name:      "throttle_store_down",
		Help:      "1 while the zone's shared throttle store (Redis) does not answer and on_error applies (local: this instance's memory), else 0.",
	}, []string{"zone"})
)

// throttleCollector exports each live throttle state once, by zone.
type throttleCollector struct{}

func (throttleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- throttleBansDesc
	ch <- throttleKeysDesc
}

func (throttleCollector) Collect(ch chan<- prometheus.Metric) {
	keys, bans := map[string]float64{}, map[string]float64{}
	throttleStores.Range(func(_, v any) bool {
		e, ok := v.(throttleEntry)
		if !ok {
			return true
		}
		if e.Memory == nil {
			return true // counts are in the shared store
		}
		c, b := e.Memory.Len()
		keys[e.zone] += float64(c)
		bans[e.zone] += float64(b)
		return true
	})
	for z, v := range keys {
		ch <- prometheus.MustNewConstMetric(throttleKeysDesc, prometheus.GaugeValue, v, z)
		ch <- prometheus.MustNewConstMetric(throttleBansDesc, prometheus.GaugeValue, bans[z], z)
	}
}

type metrics struct{}

func registerMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg != nil {
		for _, c := range []prometheus.Collector{requestsTotal, requestDuration, backendDuration, throttleEvents, throttleStoreOutages, throttleStoreDown, throttleCollector{}} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					return nil, err
				}
			}
		}
	}
	return &metrics{}, nil
}

func (m *metrics) observe(endpoint, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	requestsTotalOf.with(endpoint, outcome).Inc()
	requestDurationOf.with(endpoint, outcome).Observe(d.Seconds())
}

// children caches a vector's children by their two label values:
// WithLabelValues hashes the values and locks the vector on every call,
// which every login paid three times. The map is replaced, never changed,
// so a lookup is one atomic load; the label sets are few (endpoints, backend
// names and outcome classes) and the vectors are never reset.
type children[T any] struct {
	m   atomic.Pointer[map[[2]string]T]
	mu  sync.Mutex
	get func(...string) T
}

func (c *children[T]) with(a, b string) T {
	k := [2]string{a, b}
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[[2]string]T, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v := c.get(a, b)
	next[k] = v
	c.m.Store(&next)
	return v
}

var (
	requestsTotalOf   = &children[prometheus.Counter]{get: requestsTotal.WithLabelValues}
	requestDurationOf = &children[prometheus.Observer]{get: requestDuration.WithLabelValues}
	backendDurationOf = &children[prometheus.Observer]{get: backendDuration.WithLabelValues}
	throttleEventsOf  = &children[prometheus.Counter]{get: throttleEvents.WithLabelValues}
)

// timedBackend observes a backend's duration by outcome.
type timedBackend struct {
	name string
	backends.Backend
}

// promptBackend is a timedBackend whose backend is backends.Prompt, so the
// chain keeps the promise visible through the wrapper.
type promptBackend struct{ timedBackend }

func (promptBackend) ReturnsPromptly() {}

// unwrapTimed returns the backend module inside the metric wrapper.
func unwrapTimed(b backends.Backend) backends.Backend {
	switch t := b.(type) {
	case timedBackend:
		return t.Backend
	case promptBackend:
		return t.Backend
	}
	return b
}

// timed wraps b for the backend duration metric.
func timed(name string, b backends.Backend) backends.Backend {
	t := timedBackend{name, b}
	if _, ok := b.(backends.Prompt); ok {
		return promptBackend{t}
	}
	return t
}

func (t timedBackend) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	start := time.Now()
	id, err := t.Backend.Authenticate(ctx, c)
	backendDurationOf.with(t.name, string(backends.ClassOf(err))).Observe(time.Since(start).Seconds())
	return id, err
}

// throttleEvent counts one throttle event of the zone.
func throttleEvent(zone, kind string) {
	throttleEventsOf.with(zone, kind).Inc()
}
