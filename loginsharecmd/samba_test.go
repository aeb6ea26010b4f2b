package loginsharecmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/internal/sambatest"
)

// TestAgainstActiveDirectory: the story against a real Samba AD DC: a
// staff login whose team comes from a group jdoe is in only through
// nesting, with the AD preset's DOMAIN\user form; AD refusing a right
// password (logon_restricted, exit 1); a disabled account, which the
// preset's filter never finds; and the probe of the DC.
func TestAgainstActiveDirectory(t *testing.T) {
	dir := sambatest.Start(t)
	tmp := t.TempDir()
	const pwVar = "LOGINSHARE_TESTCMD_AD_BINDPW"
	unsetAfter(t, pwVar)
	env := writeFile(t, tmp, "env", pwVar+"='"+dir.BindPassword+"'\n")
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+fmt.Sprintf(`http://helpdesk.example.com {
	loginshare {
		user_groups {
			default Registered
		}
		staff_teams {
			%s Support
		}
		backend ldap {
			name ad
			servers %s
			tls {
				ca_file %s
			}
			preset activedirectory
			bind_dn "%s"
			bind_password {env.%s}
			base_dn %s
			groups nested
		}
	}
}
`, sambatest.GroupStaffDN, dir.LDAPSURL, dir.CAFile, dir.BindDN, pwVar, dir.BaseDN))
	secrets := []string{dir.BindPassword}
	base := []string{"--config", cfg, "--envfile", env}

	r := testRun(t, sambatest.JDoePassword+"\n", secrets, append(base, "--staff", "-u", sambatest.Domain+`\`+sambatest.JDoe)...)
	for _, want := range []string{
		"  dn: " + sambatest.JDoeDN,
		"  method: nested",
		sambatest.GroupStaffDN,
		textLine("step", "mapping: staff_teams line matched"),
		textLine("outcome", "ok: the person would be logged in"),
		textLine("team", "Support"),
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if r.code != exitLogin {
		t.Errorf("jdoe: exit %d", r.code)
	}

	// A right password refused by AD's logon rules: the sub-code's class.
	r = testRun(t, sambatest.RestrictedPassword+"\n", secrets, append(base, "-u", sambatest.Restricted)...)
	if r.code != exitRefused || !strings.Contains(r.stdout, "  dn: "+sambatest.RestrictedDN) ||
		!strings.Contains(r.stdout, "logon_restricted: a definite failure") {
		t.Errorf("restricted: exit %d, want %d and logon_restricted", r.code, exitRefused)
	}
	// The preset's filter leaves disabled accounts out: the story says no
	// entry matched, so the person is unknown, not disabled.
	r = testRun(t, sambatest.DisabledPassword+"\n", secrets, append(base, "-u", sambatest.Disabled)...)
	if r.code != exitRefused || !strings.Contains(r.stdout, "(!(userAccountControl:1.2.840.113556.1.4.803:=2))") ||
		!strings.Contains(r.stdout, "  entries: 0\n") || !strings.Contains(r.stdout, "unknown_user: a definite failure") {
		t.Errorf("disabled: exit %d, want %d and unknown_user", r.code, exitRefused)
	}

	r = testRun(t, "", secrets, append(base, "--probe")...)
	if r.code != exitLogin || !strings.Contains(r.stdout, dir.LDAPSURL+" OK (TCP, TLS, service bind as "+dir.BindDN+", root DSE)") {
		t.Errorf("probe: exit %d", r.code)
	}
}
