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
// audit line, and Cleanup must not change the handler under it (run with
// -race: Cleanup used to write the throttle pointer the request reads).
func TestCleanupWhileARequestOutlivesTheGracePeriod(t *testing.T) {
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	site := func(name string) string {
		return testGlobals(logFile, "grace_period 10ms") + fmt.Sprintf(`http://127.0.0.1:%d {
	loginshare {
		failure_delay 1ms
		failure_jitter 1ms
		backend testfake {
			name %s
			user jdoe s3cret
			stubborn 400ms
		}
	}
}
`, port, name)
	}
	s := loadConfig(t, site("grace-old"), port, logFile)

	done := make(chan reply, 1)
	go func() {
		r, err := s.tryReq(mustFormReq(t, s.base+"/loginshare/user", "username=jdoe&password=wrong"))
		if err != nil {
			t.Errorf("in-flight request: %v", err)
		}
		done <- r
	}()
	time.Sleep(100 * time.Millisecond) // the request is in the backend now
	if err := loadAgain(site("grace-new")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		mustFail(t, r, 200, DefaultMessageInvalid)
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight request never finished")
	}
	time.Sleep(500 * time.Millisecond) // let the old handler finish its audit line
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	if lines := auditLines(t, logFile); len(lines) != 1 {
		t.Errorf("%d audit lines, want 1: %v", len(lines), lines)
	} else if lines[0]["outcome"] != "invalid_credentials" {
		t.Errorf("audit line %v", lines[0])
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
