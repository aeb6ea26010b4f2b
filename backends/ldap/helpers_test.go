package ldap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/fakeldap"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// leakCheck verifies, after every other cleanup of t, that no goroutine
// started during the test is still running.
func leakCheck(t *testing.T) {
	t.Helper()
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opts) })
}

// provision provisions l with an observed logger; the context is cancelled
// and Cleanup called when t ends.
func provision(t testing.TB, l *LDAP) (*LDAP, *observer.ObservedLogs) {
	t.Helper()
	l, logs, err := tryProvision(t, l)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	return l, logs
}

func tryProvision(t testing.TB, l *LDAP) (*LDAP, *observer.ObservedLogs, error) {
	core, logs := observer.New(zapcore.DebugLevel)
	if l.probeAfter == 0 {
		l.probeAfter = -1
	}
	ctx, cancel := context.WithCancel(context.Background())
	err := l.provision(ctx, zap.New(core))
	t.Cleanup(func() {
		cancel()
		if err := l.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return l, logs, err
}

// openldap is the openldap preset against s over ldaps:// with the service
// account.
func openldap(s *slapdtest.Server) *LDAP {
	return &LDAP{
		Servers:      []string{s.LDAPSURL},
		TLS:          &TLS{CAFile: s.CAFile},
		Preset:       PresetOpenLDAP,
		BindDN:       s.BindDN,
		BindPassword: s.BindPassword,
		BaseDN:       s.BaseDN,
	}
}

// plain is a config against fake servers over ldap:// without TLS.
func plain(urls ...string) *LDAP {
	return &LDAP{
		Servers:           urls,
		InsecurePlaintext: true,
		BindDN:            "cn=svc,dc=example,dc=org",
		BindPassword:      "svcpw",
		BaseDN:            "dc=example,dc=org",
		DialTimeout:       caddyDur(500 * time.Millisecond),
		RequestTimeout:    caddyDur(500 * time.Millisecond),
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func login(t testing.TB, l *LDAP, user, pw string) (backends.Identity, error) {
	t.Helper()
	return l.Authenticate(ctxTimeout(t, 10*time.Second), backends.Credentials{Username: user, Password: pw, IPAddress: "203.0.113.7"})
}

func wantClass(t testing.TB, err error, want backends.Class) {
	t.Helper()
	if got := backends.ClassOf(err); got != want {
		t.Fatalf("class = %s, want %s (err: %v)", got, want, err)
	}
	var be *backends.Error
	if err != nil && !errors.As(err, &be) {
		t.Fatalf("error %T is not a *backends.Error", err)
	}
}

// noSecret fails when any log line or the error contains secret.
func noSecret(t testing.TB, logs *observer.ObservedLogs, err error, secret string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Fatalf("error contains the password: %v", err)
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + fmtAny(v)
		}
		if strings.Contains(line, secret) {
			t.Fatalf("log line contains the password: %s", line)
		}
	}
}

// fakeDirectory answers like a small directory: the service account and
// jdoe (password s3cret) bind, a search for jdoe finds one entry.
func fakeDirectory(r fakeldap.Request) fakeldap.Response {
	switch r.Op {
	case "bind":
		switch {
		case r.DN == "cn=svc,dc=example,dc=org" && r.Password == "svcpw":
			return fakeldap.Response{}
		case r.DN == "uid=jdoe,ou=people,dc=example,dc=org" && r.Password == "s3cret":
			return fakeldap.Response{}
		}
		return fakeldap.Response{Code: 49}
	case "search":
		if strings.Contains(r.Filter, "jdoe") {
			return fakeldap.Response{Entries: []fakeldap.Entry{{
				DN:    "uid=jdoe,ou=people,dc=example,dc=org",
				Attrs: map[string][]string{"uid": {"jdoe"}, "cn": {"Jane Doe"}, "mail": {"jane@example.org"}},
			}}}
		}
		return fakeldap.Response{}
	}
	return fakeldap.Default(r)
}
