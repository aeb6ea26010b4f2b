package caddymodule

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func auditLines(t *testing.T, logFile string) []map[string]any {
	t.Helper()
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["logger"] == "http.handlers.loginshare.audit" {
			out = append(out, m)
		}
	}
	return out
}

func TestEveryRequestGetsExactlyOneAuditLine(t *testing.T) {
	s := fixtureSite(t, "")
	okBefore := counterValue(t, requestsTotal.WithLabelValues("staff", "ok"))
	badBefore := counterValue(t, requestsTotal.WithLabelValues("user", "bad_request"))

	s.post("/loginshare/staff", form("username", "JDOE", "password", "s3cret", "ipaddress", "203.0.113.7", "interface", "staff"))
	s.post("/loginshare/user", form("username", "jdoe", "password", "wrong"))
	s.do("GET", "/loginshare/user", "", nil)
	s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", "admin"))
	s.do("GET", "/elsewhere", "", nil) // not a LoginShare path: no audit line
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}

	lines := auditLines(t, s.logFile)
	want := []struct{ endpoint, username, outcome, title string }{
		{"staff", "jdoe", "ok", "Support"}, // canonical username, not as typed
		{"user", "jdoe", "invalid_credentials", ""},
		{"user", "", "bad_request", ""},
		{"staff", "jdoe", "refused_interface", ""},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if l["msg"] != "loginshare" || l["endpoint"] != w.endpoint || l["username"] != w.username ||
			l["outcome"] != w.outcome || l["title"] != w.title {
			t.Errorf("line %d: %v, want %+v", i, l, w)
		}
		for _, f := range []string{"ipaddress", "interface", "remote_ip", "backend", "server", "duration"} {
			if _, ok := l[f]; !ok {
				t.Errorf("line %d lacks %s", i, f)
			}
		}
	}
	if lines[0]["ipaddress"] != "203.0.113.7" || lines[0]["interface"] != "staff" || lines[0]["backend"] != "static" || lines[0]["remote_ip"] != "127.0.0.1" {
		t.Errorf("line 0: %v", lines[0])
	}
	if d := counterValue(t, requestsTotal.WithLabelValues("staff", "ok")) - okBefore; d != 1 {
		t.Errorf("requests_total{staff,ok} grew by %v", d)
	}
	if d := counterValue(t, requestsTotal.WithLabelValues("user", "bad_request")) - badBefore; d != 1 {
		t.Errorf("requests_total{user,bad_request} grew by %v", d)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
