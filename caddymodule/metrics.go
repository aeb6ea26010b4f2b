package caddymodule

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

type metrics struct{}

func registerMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg != nil {
		for _, c := range []prometheus.Collector{requestsTotal, requestDuration} {
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
	requestsTotal.WithLabelValues(endpoint, outcome).Inc()
	requestDuration.WithLabelValues(endpoint, outcome).Observe(d.Seconds())
}
