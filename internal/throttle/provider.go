package throttle

import (
	"time"

	"go.uber.org/zap"
)

// StoreOptions are what a Provider gets from the handler besides the limits.
type StoreOptions struct {
	// Lease is how long a reservation counts when its login never commits
	// or releases it (the instance died): the handler's timeout plus a margin.
	Lease time.Duration
	// Logger is the handler's logger.
	Logger *zap.Logger
	// OnOutage, when not nil, is told when a shared store stops (true) and
	// starts (false) answering, for a metric.
	OnOutage func(down bool)
}

// A Provider makes the Store of one throttle zone: a store guest module
// (namespace loginshare.throttle.stores) implements it. A Store it returns
// may implement io.Closer; the handler closes it when no config uses the
// zone's state any more.
type Provider interface {
	NewStore(zone string, cfg Config, opts StoreOptions) (Store, error)
}
