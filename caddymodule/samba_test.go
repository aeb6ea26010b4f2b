package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/internal/sambatest"
)

// TestActiveDirectoryExampleThroughCaddy runs examples/Caddyfile.activedirectory,
// pointed at a private Samba AD DC (internal/sambatest; its first domain
// controller a dead port, to show failover), and logs the fixture's people in
// through it as Kayako would. Without Samba it skips, or fails under CI=true.
func TestActiveDirectoryExampleThroughCaddy(t *testing.T) {
	dir := sambatest.Start(t)
	raw, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile.activedirectory"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	// What the example must keep doing for this test to mean anything.
	for _, keep := range []string{
		"secret {env.LOGINSHARE_KEY}",
		"bind_password {env.LDAP_BIND_PASSWORD}",
		"preset activedirectory",
		"username_transform strip_domain",
		"email mail proxyAddresses",
		"groups nested",
	} {
		if !strings.Contains(cfg, keep) {
			t.Fatalf("examples/Caddyfile.activedirectory no longer contains %q", keep)
		}
	}

	tmp := t.TempDir()
	const secret = "activedirectory-example-test-key"
	t.Setenv("LOGINSHARE_KEY", secret)
	t.Setenv("LDAP_BIND_PASSWORD", dir.BindPassword)
	port, upstream, dead := freePort(t), freePort(t), freePort(t)
	access := filepath.Join(tmp, "access.log")
	// In this order: the DN replacements overlap.
	for _, r := range []struct{ old, new string }{
		{"helpdesk.example.com {", fmt.Sprintf("http://127.0.0.1:%d {", port)},
		{"/var/log/caddy/helpdesk-access.log", access},
		{"allow_from 203.0.113.10", "allow_from 127.0.0.1"},
		{"servers ldaps://dc1.corp.example.com ldaps://dc2.corp.example.com",
			fmt.Sprintf("servers ldaps://127.0.0.1:%d %s\n\t\t\ttls {\n\t\t\t\tca_file %s\n\t\t\t}", dead, dir.LDAPSURL, dir.CAFile)},
		{`"CN=svc-kayako,OU=Service Accounts,DC=corp,DC=example,DC=com"`, `"` + dir.BindDN + `"`},
		// Group DNs in the mapping and group_base_dn: the fixture's groups live in CN=Users.
		{"OU=Groups,DC=corp,DC=example,DC=com", sambatest.UsersDN},
		{"DC=corp,DC=example,DC=com", dir.BaseDN},
		{"reverse_proxy kayako:80", fmt.Sprintf("reverse_proxy 127.0.0.1:%d", upstream)},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("examples/Caddyfile.activedirectory no longer contains %q", r.old)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	for _, line := range strings.Split(cfg, "\n") {
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && strings.Contains(strings.ToLower(l), "corp") {
			t.Fatalf("a corp.example.com value was not replaced: %q", l)
		}
	}
	cfg += fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\trespond \"kayako\"\n}\n", upstream)
	logFile := filepath.Join(tmp, "caddy.log")
	s := loadConfig(t, testGlobals(logFile, "")+cfg, port, logFile)
	k := "?key=" + secret
	wantEmails := []string{sambatest.JDoeMail, "jd@example.com"} // mail, then proxyAddresses without the smtp: prefix

	type audit struct{ endpoint, username, outcome, title string }
	var want []audit // the audit line each request below must produce, in order

	t.Run("user login: usergroup, fullname and e-mails from mail and proxyAddresses", func(t *testing.T) {
		for _, typed := range []string{sambatest.JDoe, sambatest.Domain + `\` + sambatest.JDoe, sambatest.JDoeUPN} {
			r := s.post("/loginshare/user"+k, form("username", typed, "password", sambatest.JDoePassword, "ipaddress", "203.0.113.7"))
			want = append(want, audit{"user", sambatest.JDoe, "ok", "Registered"})
			if r.Doc.Result != "1" || r.Doc.User == nil {
				t.Errorf("%s: %s", typed, r.Body)
				continue
			}
			u := r.Doc.User
			if u.UserGroup != "Registered" || u.FullName != sambatest.JDoeDisplayName || u.Designation != sambatest.JDoeTitle ||
				u.Phone != sambatest.JDoePhone || strings.Join(u.Emails, ",") != strings.Join(wantEmails, ",") {
				t.Errorf("%s: %+v, want Registered, %q, e-mails %q", typed, *u, sambatest.JDoeDisplayName, wantEmails)
			}
		}
	})

	t.Run("staff login through nested membership (Tier1 inside helpdesk-staff)", func(t *testing.T) {
		for _, typed := range []string{sambatest.JDoe, sambatest.Domain + `\` + sambatest.JDoe} {
			r := s.post("/loginshare/staff"+k, form("username", typed, "password", sambatest.JDoePassword, "interface", "staff"))
			want = append(want, audit{"staff", sambatest.JDoe, "ok", "Support"})
			st := r.Doc.Staff
			if r.Doc.Result != "1" || st == nil || st.Team == nil || *st.Team != "Support" ||
				*st.FirstName != sambatest.JDoeGivenName || *st.LastName != sambatest.JDoeSN || *st.Email != sambatest.JDoeMail {
				t.Errorf("%s: %s", typed, r.Body)
			}
		}
		// A DN key of the example: admin1 is in helpdesk-admins.
		r := s.post("/loginshare/staff"+k, form("username", sambatest.Admin1, "password", sambatest.Admin1Password, "interface", "winapp"))
		want = append(want, audit{"staff", sambatest.Admin1, "ok", "Administrator"})
		if r.Doc.Result != "1" || r.Doc.Staff == nil || *r.Doc.Staff.Team != "Administrator" {
			t.Errorf("admin1: %s", r.Body)
		}
	})

	t.Run("failures all carry the generic message", func(t *testing.T) {
		before := dir.BadPwdCount(t, sambatest.JDoeDN)
		mustFail(t, s.post("/loginshare/user"+k, form("username", sambatest.JDoe, "password", "Wrong-Passw0rd")), 200, DefaultMessageInvalid)
		want = append(want, audit{"user", sambatest.JDoe, "invalid_credentials", ""})
		// One bind against AD's lockout counter, though two domain controllers are configured.
		if got := dir.BadPwdCount(t, sambatest.JDoeDN); got != before+1 {
			t.Errorf("badPwdCount went from %d to %d, want exactly one more", before, got)
		}
		// The preset's filter excludes disabled accounts: not found, never bound.
		mustFail(t, s.post("/loginshare/user"+k, form("username", sambatest.Disabled, "password", sambatest.DisabledPassword)), 200, DefaultMessageInvalid)
		want = append(want, audit{"user", sambatest.Disabled, "unknown_user", ""})
		// rroe authenticates but is in no mapped group, and the example has no default.
		mustFail(t, s.post("/loginshare/user"+k, form("username", sambatest.RRoeUPN, "password", sambatest.RRoePassword)), 200, DefaultMessageInvalid)
		want = append(want, audit{"user", sambatest.RRoe, "not_authorised", ""})
		// Without the shared secret.
		mustFail(t, s.post("/loginshare/user", form("username", sambatest.JDoe, "password", sambatest.JDoePassword)), 200, DefaultMessageDenied)
		want = append(want, audit{"user", sambatest.JDoe, "refused_caller", ""})
	})

	if r := s.do("GET", "/", "", nil); r.Body != "kayako" {
		t.Errorf("other paths do not reach Kayako: %s", r.Body)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, s.logFile)
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if l["endpoint"] != w.endpoint || l["username"] != w.username || l["outcome"] != w.outcome || l["title"] != w.title {
			t.Errorf("audit line %d: %v, want %+v", i, l, w)
		}
		// The dead first domain controller is skipped: the directory answers.
		if w.outcome == "ok" && l["server"] != dir.LDAPSURL {
			t.Errorf("audit line %d: server %v, want %s", i, l["server"], dir.LDAPSURL)
		}
	}
	logs := ""
	for _, f := range []string{s.logFile, access} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs += string(b)
	}
	for _, secretValue := range []string{sambatest.JDoePassword, sambatest.DisabledPassword, sambatest.RRoePassword,
		sambatest.Admin1Password, "Wrong-Passw0rd", dir.BindPassword, secret} {
		if strings.Contains(logs, secretValue) {
			t.Errorf("a log line contains %q", secretValue)
		}
	}
}
