package loginsharecmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	_ "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// testRun runs `loginshare test args...` in-process with stdin as standard
// input (never a terminal here: the password is its first line), and checks
// that neither the typed password nor any of secrets is in any output, and
// that the run left nothing listening.
func testRun(t *testing.T, stdin string, secrets []string, args ...string) checkRun {
	t.Helper()
	before := listeningSockets(t)
	var out, errOut bytes.Buffer
	code := run(append([]string{"test"}, args...), strings.NewReader(stdin), &out, &errOut)
	r := checkRun{code: code, stdout: out.String(), stderr: errOut.String()}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("LOGINSHARECMD_SHOW") == "1" {
			t.Logf("loginshare test %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	})
	if pw, _, _ := strings.Cut(stdin, "\n"); pw != "" {
		secrets = append(secrets, pw)
	}
	for _, s := range secrets {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("the output shows the secret %q", s)
		}
	}
	if after := listeningSockets(t); len(after) > len(before) {
		t.Errorf("the command left a socket listening: before %v, after %v", before, after)
	}
	return r
}

// listeningSockets are the TCP sockets of this process in the LISTEN state
// (by inode), from /proc.
func listeningSockets(t *testing.T) []string {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no /proc under CI=true, where the listening-socket check must run: %v", err)
		}
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) > 9 && fs[3] == "0A" && mine[fs[9]] {
				out = append(out, fs[1])
			}
		}
	}
	sort.Strings(out)
	return out
}

// writeFile writes a file into dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// unsetAfter removes environment variables the command set from an
// envfile (os.Setenv, as caddy run does) when the test ends.
func unsetAfter(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			os.Unsetenv(n)
		}
	})
}

// ldapSite is a site block whose handler asks the slapd fixture, the
// service account's password from the environment variable pwVar.
func ldapSite(dir *slapdtest.Server, address, pwVar, servers, userGroups string) string {
	return fmt.Sprintf(`%s {
	loginshare {
		user_groups {
%s
		}
		staff_teams {
			helpdesk-staff Support
		}
		backend ldap {
			name corp
			servers %s
			tls {
				ca_file %s
			}
			preset openldap
			bind_dn %s
			bind_password {env.%s}
			base_dn %s
			groups memberof
		}
	}
	respond "kayako" 200
}
`, address, userGroups, servers, dir.CAFile, dir.BindDN, pwVar, dir.BaseDN)
}

const globalOptions = "{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n}\n"

// TestLoginAgainstSlapd: the story of real logins against the slapd
// fixture, the bind password coming from an --envfile as under the service
// manager: right and wrong password, a user no mapping line admits, the
// staff endpoint, and --json.
func TestLoginAgainstSlapd(t *testing.T) {
	dir := slapdtest.Start(t)
	tmp := t.TempDir()
	const pwVar = "LOGINSHARE_TESTCMD_BINDPW"
	unsetAfter(t, pwVar)
	env := writeFile(t, tmp, "env", "# the service account\nexport "+pwVar+"="+dir.BindPassword+"\n")
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+ldapSite(dir, "http://helpdesk.example.com", pwVar, dir.LDAPSURL, "\t\t\thelpdesk-users Customers"))
	secrets := []string{dir.BindPassword}
	base := []string{"--config", cfg, "--envfile", env}

	t.Run("right password", func(t *testing.T) {
		r := testRun(t, slapdtest.Password+"\n", secrets, append(base, "-u", "JDOE")...)
		if r.code != exitLogin {
			t.Fatalf("exit %d, want %d", r.code, exitLogin)
		}
		for _, want := range []string{
			textLine("config", cfg+" (caddyfile), environment from "+env),
			"host helpdesk.example.com, user_path /loginshare/user",
			textLine("login", `user endpoint (/loginshare/user), username "JDOE"; throttle off for this test`),
			textLine("step", "ldap: user search"),
			"  server: " + dir.LDAPSURL,
			textLine("step", "ldap: user entry found"),
			"  dn: " + slapdtest.JDoeDN,
			textLine("step", "ldap: user bind succeeded"),
			slapdtest.JDoeMail,
			"  method: memberof",
			slapdtest.GroupUsersDN,
			textLine("step", "mapping: user_groups line matched"),
			"  line: 1\n", "  group: helpdesk-users\n", "  title: Customers\n",
			textLine("outcome", "ok: the person would be logged in"),
			textLine("backend", "corp, server "+dir.LDAPSURL),
			textLine("username", "jdoe (as the directory has it)"),
			textLine("user group", "Customers"),
			"<usergroup>Customers</usergroup>",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
		if r.stderr != "" {
			t.Errorf("stderr: %s", r.stderr)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		r := testRun(t, "not-the-password\n", secrets, append(base, "-u", "jdoe")...)
		if r.code != exitRefused {
			t.Fatalf("exit %d, want %d", r.code, exitRefused)
		}
		for _, want := range []string{
			slapdtest.JDoeDN,
			textLine("step", "ldap: user bind refused"),
			textLine("outcome", "invalid_credentials: a definite failure: Kayako shows message_invalid"),
			"<result>0</result>",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
	})

	t.Run("no mapping line matches", func(t *testing.T) {
		r := testRun(t, slapdtest.Password+"\n", secrets, append(base, "-u", slapdtest.Admin1)...)
		if r.code != exitRefused {
			t.Fatalf("exit %d, want %d", r.code, exitRefused)
		}
		for _, want := range []string{
			slapdtest.Admin1DN, slapdtest.GroupAdminsDN,
			textLine("step", "mapping: user_groups: no line matched and no default: refused"),
			"not_authorised: a definite failure",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
	})

	t.Run("staff, chosen by --path", func(t *testing.T) {
		r := testRun(t, slapdtest.Password+"\n", secrets, append(base, "-u", "jdoe", "--path", "/loginshare/staff/")...)
		if r.code != exitLogin || !strings.Contains(r.stdout, textLine("team", "Support")) ||
			!strings.Contains(r.stdout, "staff endpoint (/loginshare/staff), username \"jdoe\", interface staff") {
			t.Errorf("exit %d", r.code)
		}
		r = testRun(t, slapdtest.Password+"\n", secrets, append(base, "-u", "jdoe", "--staff", "--interface", "admin")...)
		if r.code != exitRefused || !strings.Contains(r.stdout, "refused_interface: refused before any backend") {
			t.Errorf("admin interface: exit %d", r.code)
		}
	})

	t.Run("json", func(t *testing.T) {
		r := testRun(t, slapdtest.Password+"\n", secrets, append(base, "-u", "jdoe", "--json")...)
		var j struct {
			Outcome, Reason, Backend, Server, Username, Title, Document string
			Steps                                                       []struct {
				Source, What string
				Fields       []struct{ Key, Value string }
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
			t.Fatalf("not one JSON object: %v", err)
		}
		if r.code != exitLogin || j.Outcome != "ok" || j.Backend != "corp" || j.Server != dir.LDAPSURL ||
			j.Username != slapdtest.JDoe || j.Title != "Customers" || !strings.Contains(j.Document, "<usergroup>Customers</usergroup>") {
			t.Errorf("exit %d, %+v", r.code, j)
		}
		found := false
		for _, s := range j.Steps {
			if s.Source == "ldap" && s.What == "user entry found" {
				for _, f := range s.Fields {
					found = found || f.Key == "dn" && f.Value == slapdtest.JDoeDN
				}
			}
		}
		if !found {
			t.Errorf("no step with the DN: %+v", j.Steps)
		}
	})

	t.Run("probe", func(t *testing.T) {
		r := testRun(t, "", secrets, append(base, "--probe")...)
		want := textLine("probe", "corp (ldap) [user and staff]: "+dir.LDAPSURL+" OK (TCP, TLS, service bind as "+dir.BindDN+", root DSE)")
		if r.code != exitLogin || !strings.Contains(r.stdout, want) {
			t.Errorf("exit %d; stdout lacks %q", r.code, want)
		}
	})
}

// TestWrongBindPassword: the operator's question "is my bind_password
// right?" — a wrong one fails the probe, naming the server, and a login is
// unavailable (exit 2), never "wrong password".
func TestWrongBindPassword(t *testing.T) {
	dir := slapdtest.Start(t)
	tmp := t.TempDir()
	const pwVar = "LOGINSHARE_TESTCMD_WRONG_BINDPW"
	t.Setenv(pwVar, "not-the-bind-password")
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+ldapSite(dir, "http://helpdesk.example.com", pwVar, dir.LDAPSURL, "\t\t\thelpdesk-users Customers"))
	secrets := []string{"not-the-bind-password", dir.BindPassword}

	r := testRun(t, "", secrets, "--config", cfg, "--probe")
	if r.code != exitBroken || !regexp.MustCompile(`(?m)^probe +corp \(ldap\) \[user and staff\]: `+regexp.QuoteMeta(dir.LDAPSURL)+` FAILED: .*(nvalid credentials|service account)`).MatchString(r.stdout) {
		t.Errorf("probe: exit %d, want %d and a FAILED line naming the server", r.code, exitBroken)
	}

	r = testRun(t, slapdtest.Password+"\n", secrets, "--config", cfg, "-u", "jdoe")
	if r.code != exitBroken || !strings.Contains(r.stdout, "unavailable: the endpoint could not decide") {
		t.Errorf("login: exit %d, want %d (unavailable)", r.code, exitBroken)
	}
}

// TestServerDown: a directory nobody answers on is unavailable; the probe
// names it.
func TestServerDown(t *testing.T) {
	dir := slapdtest.Start(t)
	tmp := t.TempDir()
	const pwVar = "LOGINSHARE_TESTCMD_DOWN_BINDPW"
	t.Setenv(pwVar, dir.BindPassword)
	down := fmt.Sprintf("ldaps://127.0.0.1:%d", freePort(t))
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+ldapSite(dir, "http://helpdesk.example.com", pwVar, down+" "+dir.LDAPSURL, "\t\t\thelpdesk-users Customers"))
	secrets := []string{dir.BindPassword}

	r := testRun(t, "", secrets, "--config", cfg, "--probe")
	if r.code != exitBroken || !strings.Contains(r.stdout, "corp (ldap) [user and staff]: "+down+" FAILED: ") ||
		!strings.Contains(r.stdout, dir.LDAPSURL+" OK") {
		t.Errorf("probe with one server down: exit %d, want %d, the down server FAILED and the other OK", r.code, exitBroken)
	}

	// Only the down server: logins are unavailable.
	cfg = writeFile(t, tmp, "Caddyfile.down", globalOptions+ldapSite(dir, "http://helpdesk.example.com", pwVar, down, "\t\t\thelpdesk-users Customers"))
	r = testRun(t, slapdtest.Password+"\n", secrets, "--config", cfg, "-u", "jdoe")
	if r.code != exitBroken || !strings.Contains(r.stdout, "unavailable: the endpoint could not decide") {
		t.Errorf("login: exit %d, want %d", r.code, exitBroken)
	}
	if r = testRun(t, "", secrets, "--config", cfg, "--probe", "--json"); r.code != exitBroken ||
		!strings.Contains(r.stdout, `"server": "`+down+`"`) || !strings.Contains(r.stdout, `"ok": false`) {
		t.Errorf("probe --json: exit %d", r.code)
	}
}

// TestChoosingAHandler: two sites in one Caddyfile; --host picks one (the
// one whose mapping then decides), without it the command lists both and
// exits 3.
func TestChoosingAHandler(t *testing.T) {
	dir := slapdtest.Start(t)
	tmp := t.TempDir()
	const pwVar = "LOGINSHARE_TESTCMD_TWO_BINDPW"
	t.Setenv(pwVar, dir.BindPassword)
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+
		ldapSite(dir, "http://helpdesk.example.com", pwVar, dir.LDAPSURL, "\t\t\thelpdesk-users Customers")+
		ldapSite(dir, "http://admins.example.com, http://*.admins.example.com", pwVar, dir.LDAPSURL, "\t\t\thelpdesk-admins Admins"))
	secrets := []string{dir.BindPassword}

	r := testRun(t, slapdtest.Password+"\n", secrets, "--config", cfg, "-u", "admin1")
	if r.code != exitUsage || !strings.Contains(r.stderr, "2 loginshare handlers match; pick one with --host and/or --path") ||
		!strings.Contains(r.stderr, "host helpdesk.example.com,") || !strings.Contains(r.stderr, "host admins.example.com, *.admins.example.com,") {
		t.Errorf("without --host: exit %d, want %d listing both", r.code, exitUsage)
	}
	r = testRun(t, slapdtest.Password+"\n", secrets, "--config", cfg, "-u", "admin1", "--host", "eu.ADMINS.example.com")
	if r.code != exitLogin || !strings.Contains(r.stdout, textLine("user group", "Admins")) {
		t.Errorf("--host admins: exit %d", r.code)
	}
	r = testRun(t, slapdtest.Password+"\n", secrets, "--config", cfg, "-u", "admin1", "--host", "helpdesk.example.com")
	if r.code != exitRefused || !strings.Contains(r.stdout, "not_authorised") {
		t.Errorf("--host helpdesk: exit %d", r.code)
	}
	r = testRun(t, slapdtest.Password+"\n", secrets, "--config", cfg, "-u", "admin1", "--host", "elsewhere.example.com")
	if r.code != exitUsage || !strings.Contains(r.stderr, "no loginshare handler matches --host elsewhere.example.com") {
		t.Errorf("--host elsewhere: exit %d", r.code)
	}
}

// TestSubroutesAndPaths: a handler inside `route` (a subroute in the JSON)
// with its own paths, beside a catch-all site; --path picks it.
func TestSubroutesAndPaths(t *testing.T) {
	tmp := t.TempDir()
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+`
http://helpdesk.example.com {
	route /kayako/* {
		loginshare {
			user_path /kayako/ls/user
			staff_path /kayako/ls/staff
			backend static {
				user jdoe $2a$04$hbuWq7l.38GdReIJAmmMIuSogwCi7sJNYbBWKx3n6BP9weBbjhRpO
			}
		}
	}
}
:8080 {
	loginshare {
		backend static {
			user jdoe $2a$04$hbuWq7l.38GdReIJAmmMIuSogwCi7sJNYbBWKx3n6BP9weBbjhRpO
		}
	}
}
`)
	r := testRun(t, "", nil, "--config", cfg, "--probe")
	if r.code != exitUsage || strings.Count(r.stderr, "\n  server ") != 2 {
		t.Errorf("two handlers: exit %d", r.code)
	}
	r = testRun(t, "", nil, "--config", cfg, "--probe", "--path", "/kayako/ls/user")
	if r.code != exitLogin || !strings.Contains(r.stdout, "user_path /kayako/ls/user") ||
		!strings.Contains(r.stdout, textLine("probe", "static [user and staff]: no probe (this backend has no server to reach)")) {
		t.Errorf("--path: exit %d", r.code)
	}
}

// TestConfigErrors: what cannot be loaded or provisioned is exit 2; flags
// that make no sense are exit 3.
func TestConfigErrors(t *testing.T) {
	tmp := t.TempDir()
	noHandler := writeFile(t, tmp, "Caddyfile", globalOptions+"http://x.example.com {\n\trespond ok\n}\n")
	badProvision := writeFile(t, tmp, "bad.json", `{"apps":{"http":{"servers":{"s":{"listen":[":0"],"routes":[{"handle":[
		{"handler":"loginshare","user_path":"/same","staff_path":"/same","backends":[{"backend":"static"}]}]}]}}}}}`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"missing file", []string{"--config", filepath.Join(tmp, "nope"), "-u", "jdoe"}, exitBroken, "reading the config"},
		{"no handler", []string{"--config", noHandler, "-u", "jdoe"}, exitBroken, "the config has no loginshare handler"},
		{"provision fails", []string{"--config", badProvision, "-u", "jdoe"}, exitBroken, "provisioning the handler: "},
		{"missing envfile", []string{"--config", noHandler, "--envfile", filepath.Join(tmp, "nope")}, exitBroken, "reading environment file"},
		{"no config", []string{"-u", "jdoe"}, exitUsage, ""},
		{"probe with a username", []string{"--config", noHandler, "--probe", "-u", "jdoe"}, exitUsage, ""},
		{"interface without staff", []string{"--config", noHandler, "--interface", "admin"}, exitUsage, ""},
		{"an argument", []string{"--config", noHandler, "extra"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRun(t, "pw-not-shown\n", nil, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.out) {
				t.Errorf("exit %d, want %d with %q", r.code, tc.code, tc.out)
			}
		})
	}
}

// TestEnvFileAsCaddyReadsIt: the envfile parser gives what `caddy environ
// --envfile` (Caddy's own loader) gives.
func TestEnvFileAsCaddyReadsIt(t *testing.T) {
	tmp := t.TempDir()
	content := `# comment
LSENV_PLAIN=value
export LSENV_EXPORTED=exp
LSENV_COMMENT=before # after
LSENV_HASH=a#b
LSENV_DQ="double quoted"
LSENV_SQ='single'
LSENV_MULTI="line one
line two"
LSENV_ESC="say \"hi\""
LSENV_EMPTY=
LSENV_EQ=a=b=c
LSENV_PLAIN=later wins
`
	f := writeFile(t, tmp, "env", content)
	vars, err := parseEnvFile(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{}
	for _, kv := range vars {
		mine[kv[0]] = kv[1]
	}
	r := caddyRun(t, "", "environ", "--envfile", f)
	if r.code != 0 {
		t.Fatalf("caddy environ: exit %d: %s", r.code, r.stderr)
	}
	theirs := map[string]string{}
	// Multi-line values continue on lines without "=" or "LSENV_".
	var last string
	for _, l := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "LSENV_") {
			theirs[k], last = v, k
		} else if last != "" && !strings.Contains(l, "=") && l != "" {
			theirs[last] += "\n" + l
		} else {
			last = ""
		}
	}
	for k, v := range theirs {
		if mine[k] != v {
			t.Errorf("%s: caddy %q, ours %q", k, v, mine[k])
		}
	}
	if len(mine) != len(theirs) {
		t.Errorf("caddy read %d variables, we read %d: %v / %v", len(theirs), len(mine), theirs, mine)
	}
	for _, bad := range []string{"NOEQUALS\n", "=v\n", "A B=c\n", "K= v\n"} {
		if _, err := parseEnvFile(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestTestThroughCaddysPlumbing: exit statuses and help through Caddy's own
// main, as a real build runs the command.
func TestTestThroughCaddysPlumbing(t *testing.T) {
	tmp := t.TempDir()
	cfg := writeFile(t, tmp, "Caddyfile", globalOptions+`
http://helpdesk.example.com {
	loginshare {
		backend static {
			user jdoe $2a$04$hbuWq7l.38GdReIJAmmMIuSogwCi7sJNYbBWKx3n6BP9weBbjhRpO
		}
	}
}
`)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"refused", "wrong-pw\n", []string{"-u", "jdoe"}, exitRefused, "invalid_credentials"},
		{"probe", "", []string{"--probe"}, exitLogin, "no probe"},
		{"usage", "", []string{"--bogus"}, exitUsage, ""},
		{"help", "", []string{"--help"}, exitLogin, "--probe logs nobody in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := caddyRun(t, tc.stdin, append([]string{"loginshare", "test", "--config", cfg}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.out) || strings.Contains(r.stderr, `"level"`) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", r.code, tc.code, tc.out, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "wrong-pw") {
				t.Error("the password appears in the output")
			}
		})
	}
	r := caddyRun(t, "", "help", "loginshare")
	if !regexp.MustCompile(`(?m)^  test +Runs one login through this plugin's own configuration`).MatchString(r.stdout) {
		t.Errorf("caddy help loginshare does not list test:\n%s", r.stdout)
	}
}

// TestSecretsOf: the resolved secrets a handler's JSON names, so that no
// message quoting one can print it.
func TestSecretsOf(t *testing.T) {
	t.Setenv("LSTEST_BIND", "from-the-env")
	raw := `{"secret":"url-key-123","backends":[
		{"backend":"ldap","bind_password":"{env.LSTEST_BIND}"},
		{"backend":"sql","dsn":"postgres://kayako:pg-Passw0rd@db:5432/shop"},
		{"backend":"sql","dsn":"shop:my-Passw0rd@tcp(db:3306)/shop"},
		{"backend":"sql","dsn":"host=db user=x password='kv-Passw0rd'"},
		{"backend":"static","users":[{"username":"jdoe","password":"$2a$04$notasecret"}]}],
		"throttle":{"store":{"backend":"redis","url":"rediss://acl:url-Redis-pw@redis:6380/0","password":"redis-Passw0rd","key_secret":"hmac-Key-123"}}}`
	got := strings.Join(secretsOf([]byte(raw)), "\n")
	for _, want := range []string{"url-key-123", "from-the-env", "pg-Passw0rd", "my-Passw0rd", "kv-Passw0rd", "url-Redis-pw", "redis-Passw0rd", "hmac-Key-123"} {
		if !strings.Contains(got, want+"\n") && !strings.HasSuffix(got, want) {
			t.Errorf("secrets lack %q: %q", want, got)
		}
	}
	if strings.Contains(got, "notasecret") {
		t.Errorf("a static user's hash is no secret: %q", got)
	}
}

// TestDevLogLines: zap's development console lines, with and without a
// logger name and fields; stack-trace lines are not entries.
func TestDevLogLines(t *testing.T) {
	for _, tc := range []struct {
		line string
		want logEntry
		ok   bool
	}{
		{"2026-01-02T03:04:05.678Z\tWARN\tcaddymodule/module.go:295\topen to anyone\t{\"user_path\": \"/u\"}",
			logEntry{Level: "WARN", Message: "open to anyone", Fields: json.RawMessage(`{"user_path": "/u"}`)}, true},
		{"2026-01-02T03:04:05.678+0100\tERROR\tldap\tldap/module.go:12\tserver check failed",
			logEntry{Level: "ERROR", Logger: "ldap", Message: "server check failed"}, true},
		{"github.com/kayako-loginshare/caddy-loginshare/caddymodule.(*Handler).Provision", logEntry{}, false},
		{"\t/root/go/pkg/mod/x.go:12", logEntry{}, false},
	} {
		got, ok := parseDevLogLine(tc.line)
		if ok != tc.ok || got.Level != tc.want.Level || got.Logger != tc.want.Logger || got.Message != tc.want.Message ||
			string(got.Fields) != string(tc.want.Fields) {
			t.Errorf("%q: %+v %v, want %+v %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHostMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"helpdesk.example.com", "HelpDesk.Example.com", true},
		{"helpdesk.example.com", "helpdesk.example.com.", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", "example.com", false},
		{"helpdesk.example.com", "other.example.com", false},
	} {
		if got := hostMatches(tc.pattern, tc.host); got != tc.want {
			t.Errorf("hostMatches(%q, %q) = %v", tc.pattern, tc.host, got)
		}
	}
}
