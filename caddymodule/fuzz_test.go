package caddymodule

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// provisionedHandler is a Handler provisioned outside a server, for fuzzing
// ServeHTTP directly (the integration tests drive it through a real Caddy).
func provisionedHandler(t testing.TB) *Handler {
	t.Helper()
	backend, err := json.Marshal(map[string]any{"backend": "testfake", "name": "fuzz", "users": map[string]string{"jdoe": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	h := &Handler{
		FailureDelay:  caddy.Duration(1),
		FailureJitter: caddy.Duration(1),
		MaxBody:       4096,
		Throttle:      &ThrottleConfig{PerUser: &one, PerIP: &one, MaxKeys: 64},
		UserGroups:    &Mapping{Map: []MappingLine{{Group: "helpdesk-users", Title: "Registered"}}},
		StaffTeams:    &Mapping{Map: []MappingLine{{Group: "cn=helpdesk-staff,dc=example", Title: "Support"}}, Default: "Staff"},
		BackendsRaw:   []json.RawMessage{backend},
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	// Log as in production (JSON, INFO: one audit line per request), but to nowhere.
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	h.audit = h.logger.Named("audit")
	return h
}

// FuzzServeHTTP: whatever arrives at a LoginShare path, the answer is one
// well-formed Kayako document with result 0 or 1, a message exactly when it
// fails, and a status of 200, 405 or 413; other paths reach the next handler.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []struct{ method, path, ctype, body string }{
		{"POST", "/loginshare/user", "application/x-www-form-urlencoded", "username=jdoe&password=s3cret&ipaddress=1.2.3.4"},
		{"POST", "/loginshare/staff", "application/x-www-form-urlencoded", "username=jdoe&password=s3cret&interface=staff"},
		{"POST", "/loginshare/user", "application/x-www-form-urlencoded", "username=jdoe&password=%zz"},
		{"POST", "/loginshare/user", "application/x-www-form-urlencoded", "username=a&username=b&password=c"},
		{"POST", "/loginshare/user", "application/x-www-form-urlencoded", "username=%00&password=%FF%FE"},
		{"POST", "/loginshare/user", "multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
		{"POST", "/loginshare/user", "application/json", `{"username":"jdoe"}`},
		{"POST", "/loginshare/user/", "application/x-www-form-urlencoded", "username=jdoe&password=s3cret"},
		{"GET", "/loginshare/staff", "", ""},
		{"POST", "/other", "application/x-www-form-urlencoded", "username=jdoe&password=s3cret"},
		{"POST", "/loginshare/user", "application/x-www-form-urlencoded", "username=" + strings.Repeat("x", 5000) + "&password=y"},
		{"POST", "/loginshare/user", "application/x-www-form-urlencoded;charset=utf-16", "username=jdoe&password=s3cret"},
	} {
		f.Add(seed.method, seed.path, seed.ctype, seed.body)
	}
	h := provisionedHandler(f)
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		if !validMethod(method) {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(body))
		req.Method = method
		req.URL.Path = "/" + strings.TrimLeft(path, "/")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		nextCalled := false
		next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			nextCalled = true
			return nil
		})
		if err := h.ServeHTTP(rec, req, next); err != nil {
			t.Fatalf("ServeHTTP returned %v", err)
		}
		if h.endpoint(req.URL.Path) == "" {
			if !nextCalled || rec.Body.Len() != 0 {
				t.Fatalf("non-LoginShare path %q not passed on untouched", req.URL.Path)
			}
			return
		}
		if nextCalled {
			t.Fatalf("LoginShare path %q passed on", req.URL.Path)
		}
		switch rec.Code {
		case 200, 405, 413:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		var doc kayakoDoc
		if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, rec.Body.String())
		}
		switch {
		case doc.Result == "1" && doc.Message == nil && (doc.User != nil) != (doc.Staff != nil):
		case doc.Result == "0" && doc.Message != nil && *doc.Message != "" && doc.User == nil && doc.Staff == nil:
		default:
			t.Fatalf("not a Kayako document: %s", rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "s3cret") {
			t.Fatalf("the password is in the answer")
		}
	})
}

func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// BenchmarkServeHTTPUserLogin measures the handler's own cost per successful
// login (form checks, throttle lookup, backend slot, mapping, XML, audit
// line) with an in-memory backend, so directory time does not hide it.
func BenchmarkServeHTTPUserLogin(b *testing.B) {
	h := provisionedHandler(b)
	body := "username=jdoe&password=s3cret&ipaddress=203.0.113.7"
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/loginshare/user", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, req, next); err != nil || !strings.Contains(rec.Body.String(), "<result>1</result>") {
				b.Fatalf("%v %s", err, rec.Body.String())
			}
		}
	})
}
