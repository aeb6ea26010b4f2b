package ldap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// Mutual TLS against a slapd with TLSVerifyClient demand: the client
// certificate from the Caddyfile (tls { client_cert }) over ldaps:// and from
// JSON (tls.client_cert / tls.client_key) over ldap:// + StartTLS.
func TestClientCertLogsIn(t *testing.T) {
	leakCheck(t)
	s := slapdtest.StartWith(t, slapdtest.Options{RequireClientCert: true})

	d := caddyfile.NewTestDispenser(`backend ldap {
		servers ` + s.LDAPSURL + `
		tls {
			ca_file ` + s.CAFile + `
			client_cert ` + s.ClientCertFile + ` ` + s.ClientKeyFile + `
		}
		preset openldap
		bind_dn "` + s.BindDN + `"
		bind_password ` + s.BindPassword + `
		base_dn ` + s.BaseDN + `
	}`)
	d.Next()
	d.NextArg()
	unm, err := caddyfile.UnmarshalModule(d, "loginshare.backends.ldap")
	if err != nil {
		t.Fatal(err)
	}
	viaCaddyfile := unm.(*LDAP)

	js, err := json.Marshal(map[string]any{
		"servers":  []string{s.URL},
		"starttls": true,
		"tls": map[string]string{
			"ca_file": s.CAFile, "server_name": "localhost",
			"client_cert": s.ClientCertFile, "client_key": s.ClientKeyFile,
		},
		"preset": PresetOpenLDAP, "bind_dn": s.BindDN, "bind_password": s.BindPassword, "base_dn": s.BaseDN,
	})
	if err != nil {
		t.Fatal(err)
	}
	viaJSON := new(LDAP)
	if err := json.Unmarshal(js, viaJSON); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		cfg    *LDAP
		server string
	}{
		{"ldaps caddyfile", viaCaddyfile, s.LDAPSURL},
		{"starttls json", viaJSON, s.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.TLS == nil || tc.cfg.TLS.ClientCertFile != s.ClientCertFile || tc.cfg.TLS.ClientKeyFile != s.ClientKeyFile {
				t.Fatalf("tls = %+v", tc.cfg.TLS)
			}
			l, logs := provision(t, tc.cfg)
			id, err := login(t, l, slapdtest.JDoe, slapdtest.Password)
			if err != nil {
				t.Fatal(err)
			}
			if id.Username != slapdtest.JDoe || id.FullName != slapdtest.JDoeCN || id.Server != tc.server || len(id.Groups) != 2 {
				t.Errorf("identity = %+v", id)
			}
			// The same pooled (client-authenticated) connections serve a wrong password.
			_, err = login(t, l, slapdtest.JDoe, "wrong-Passw0rd")
			wantClass(t, err, backends.InvalidCredentials)
			noSecret(t, logs, err, slapdtest.Password)
			noSecret(t, logs, err, "wrong-Passw0rd")
		})
	}
}

// Without a client certificate the directory refuses every TLS session:
// the login fails closed as unavailable (never invalid_credentials, which
// would blame the user), the probe tells the operator when it can, and no
// log line carries a password.
func TestNoClientCertFailsClosed(t *testing.T) {
	leakCheck(t)
	s := slapdtest.StartWith(t, slapdtest.Options{RequireClientCert: true})
	for _, tc := range []struct {
		name string
		mod  func(*LDAP)
		// With TLS 1.3 the client's handshake completes before slapd checks
		// the (absent) certificate; the refusal arrives on the first read.
		// The probe reads the root DSE, so a refused client is noticed with
		// or without a service account.
		probe bool
	}{
		{"ldaps", func(*LDAP) {}, true},
		{"starttls", func(c *LDAP) { c.Servers, c.StartTLS, c.TLS.ServerName = []string{s.URL}, true, "localhost" }, true},
		{"ldaps direct bind", func(c *LDAP) {
			c.BindDN, c.BindPassword, c.Preset = "", "", ""
			c.BindDNTemplate = "uid={username}," + slapdtest.PeopleDN
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := openldap(s)
			tc.mod(cfg)
			if tc.probe {
				cfg.probeAfter = 1 // probe at once
			}
			l, logs := provision(t, cfg)
			for _, pw := range []string{slapdtest.Password, "wrong-Passw0rd"} {
				_, err := login(t, l, slapdtest.JDoe, pw)
				wantClass(t, err, backends.Unavailable)
				noSecret(t, logs, err, pw)
			}
			if tc.probe {
				waitFor(t, func() bool { return logs.FilterMessage("LDAP server check failed").Len() > 0 })
			}
			for _, pw := range []string{slapdtest.Password, "wrong-Passw0rd", slapdtest.ServicePassword} {
				noSecret(t, logs, nil, pw)
			}
		})
	}
}

// A client certificate or key that is missing or does not parse stops
// provisioning with an error naming tls client_cert and the reason.
func TestClientCertFileErrors(t *testing.T) {
	leakCheck(t)
	s := slapdtest.StartWith(t, slapdtest.Options{RequireClientCert: true})
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, cert, key string
		want            []string
	}{
		{"missing cert", missing, s.ClientKeyFile, []string{"tls client_cert", missing, "no such file"}},
		{"missing key", s.ClientCertFile, missing, []string{"tls client_cert", missing, "no such file"}},
		{"cert not PEM", garbage, s.ClientKeyFile, []string{"tls client_cert", "certificate"}},
		{"key not PEM", s.ClientCertFile, garbage, []string{"tls client_cert", "key"}},
		{"key and cert swapped", s.ClientKeyFile, s.ClientCertFile, []string{"tls client_cert"}},
		{"key does not match", s.CAFile, s.ClientKeyFile, []string{"tls client_cert", "does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := openldap(s)
			cfg.TLS.ClientCertFile, cfg.TLS.ClientKeyFile = tc.cert, tc.key
			_, _, err := tryProvision(t, cfg)
			if err == nil {
				t.Fatal("provisioned")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
