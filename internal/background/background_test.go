package background

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbeRunsAfterTheDelay(t *testing.T) {
	var p Probe
	ran := make(chan struct{})
	p.Start(context.Background(), time.Millisecond, func(context.Context) { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the check never ran")
	}
	p.Stop()
	p.Stop() // twice is fine
}

func TestProbeCancelledBeforeTheDelayNeverRuns(t *testing.T) {
	var ran atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	var p Probe
	p.Start(ctx, time.Hour, func(context.Context) { ran.Store(true) })
	cancel()
	p.Stop() // returns: the goroutine saw the cancellation
	if ran.Load() {
		t.Fatal("a check ran although its config ended during the delay")
	}
	var q Probe
	q.Start(context.Background(), time.Hour, func(context.Context) { ran.Store(true) })
	q.Stop()
	if ran.Load() {
		t.Fatal("a stopped probe ran")
	}
	var never Probe
	never.Stop() // a Probe never started
}

func TestStopEndsARunningCheck(t *testing.T) {
	var p Probe
	inside := make(chan struct{})
	p.Start(context.Background(), 0, func(ctx context.Context) {
		close(inside)
		<-ctx.Done()
	})
	<-inside
	done := make(chan struct{})
	go func() { p.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the running check")
	}
}
