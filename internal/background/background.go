// Package background runs the one goroutine a module keeps after
// provisioning: a check of its servers (LDAP, SQL, Redis) that waits a
// moment, so `caddy validate` and `caddy adapt --validate` (which cancel the
// config right after provisioning) never dial, then runs once and ends with
// the config.
package background

import (
	"context"
	"sync"
	"time"
)

// Probe is one module's background check. The zero value is ready; Stop is
// safe on a Probe never started and when called twice.
type Probe struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs check in a goroutine once delay has passed, unless ctx ends
// first. check gets a context that ends with ctx or Stop.
func (p *Probe) Start(ctx context.Context, delay time.Duration, check func(context.Context)) {
	pctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-pctx.Done():
			return
		case <-t.C:
		}
		check(pctx)
	}()
}

// Stop ends the check and waits for its goroutine.
func (p *Probe) Stop() {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
}
