package caddymodule

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A reload with a grace_period can clean up the old config's handler while
// one of its requests is still running (the grace period ran out before the
// backend answered). That request must still answer one document and one
// audit line, and Cleanup must not change the handler under it: Cleanup used
// to clear the throttle pointer the request reads, so the request's failure
// was lost (and, without the ordering below, the race detector saw the write).
//
// Every step waits for its event, not the clock: the request is inside the
// backend before the reload starts; the reload has returned, so the old
// config's Cleanup has run, before the backend is let go. The failure must
// then land in the throttle state the new config shares (same zone, named
// because the backends differ, and same settings):
// with per_user 1 it bans jdoe there.
func TestCleanupWhileARequestOutlivesTheGracePeriod(t *testing.T) {
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	site := func(backend string) string {
		return testGlobals(logFile, "grace_period 10ms") + fmt.Sprintf(`http://127.0.0.1:%d {
	loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		throttle {
			per_user 1 10m
			per_ip 0
			max_keys 2104
			zone cleanup-race
		}
		%s
	}
}
`, port, backend)
	}
	withClock(t)
	name, newName := uniqueName("grace-old"), uniqueName("grace-new")
	g := gateFor(name)
	s := loadConfig(t, site("backend testmut {\n\t\t\tname "+name+"\n\t\t\tmode gate\n\t\t}"), port, logFile)
	t.Cleanup(g.open) // runs first: never leave a call waiting, whatever happens below

	type answer struct {
		r   reply
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := s.tryReq(mustFormReq(t, s.base+"/loginshare/user", "username=jdoe&password=wrong"))
		done <- answer{r, err}
	}()
	select {
	case <-g.entered: // the request is in the backend now
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the backend")
	}
	if err := loadAgain(site("backend testfake {\n\t\t\tname " + newName + "\n\t\t\tuser jdoe s3cret\n\t\t}")); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		t.Fatalf("the request answered before its backend did: %s %v", a.r.Body, a.err)
	default:
	}
	g.open()
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatalf("in-flight request: %v", a.err)
		}
		mustFail(t, a.r, 200, DefaultMessageInvalid)
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request never finished")
	}
	// The old handler counted the failure in the shared state after its
	// Cleanup: the new config refuses jdoe without asking its backend.
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret")), 200, DefaultMessageInvalid)
	if n := fakeCount(newName); n != 0 {
		t.Errorf("the new backend was asked %d times: the in-flight failure was not counted", n)
	}
	// The answer is written before the audit line: wait for the line.
	deadline := time.Now().Add(10 * time.Second)
	for len(auditLines(t, logFile)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("audit lines %v, want the in-flight one and the refused one", auditLines(t, logFile))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, logFile)
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2: %v", len(lines), lines)
	}
	byBackend := map[any]map[string]any{}
	for _, l := range lines {
		byBackend[l["backend"]] = l
	}
	if l := byBackend["testmut"]; l == nil || l["outcome"] != "invalid_credentials" {
		t.Errorf("in-flight request's audit line: %v", lines)
	}
	if l := byBackend[""]; l == nil || l["outcome"] != "throttled" {
		t.Errorf("new config's audit line: %v", lines)
	}
	if n := mutCount(name); n != 1 {
		t.Errorf("old backend called %d times, want 1", n)
	}
}

func mustFormReq(t *testing.T, u, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}
