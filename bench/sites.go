package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	ldapbackend "github.com/kayako-loginshare/caddy-loginshare/backends/ldap"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// A target is one Caddy site that wrk loads: the HTTP cost alone
// (respond), the naive PHP peer (php_fastcgi), or the module with one
// configuration. Each runs in its own Caddy process.
type target struct {
	name  string // key in -configs and in the results
	label string // row label in the table
	ref   string // the raw measurement its limit is computed from ("" for http)
	body  string // the site's directives

	module    bool
	port      int
	adminPort int // with -profile, module targets only
	proc      *proc
	log       string
}

// respondDoc is about as long as the module's success document.
const respondDoc = `<?xml version="1.0" encoding="UTF-8"?>
<loginshare><result>1</result><user><usergroup>Registered</usergroup><fullname>Bench User 1</fullname><designation></designation><emails><email>user0001@example.org</email></emails><phone>+1 555 0001</phone></user></loginshare>
`

// moduleConfigs are the module's configurations, in table order.
var moduleConfigs = []string{"preset", "none", "memberof", "search", "nested", "static"}

// groupMapping makes the answer depend on groups (so the handler asks for
// them) while every account still gets a title: bench-all is reached only
// through nesting.
const groupMapping = `user_groups {
			bench-all Members
			default Registered
		}`

func ldapSite(dir *slapdtest.Server, mapping, groups string, poolSize int) string {
	groupLines := ""
	if groups != "" {
		groupLines = "\n\t\t\tgroup_base_dn " + slapdtest.GroupsDN + "\n\t\t\tgroups " + groups
	}
	if poolSize > 0 {
		groupLines += fmt.Sprintf("\n\t\t\tpool_size %d\n\t\t\tbind_pool_size %d", poolSize, poolSize)
	}
	return fmt.Sprintf(`loginshare {
		allow_from 127.0.0.1
		%s
		backend ldap {
			servers %s
			tls {
				ca_file %s
			}
			preset openldap
			bind_dn %s
			bind_password {env.BENCH_BIND_PASSWORD}
			base_dn %s%s
		}
	}
	respond 404`, mapping, dir.LDAPSURL, dir.CAFile, dir.BindDN, dir.BaseDN, groupLines)
}

func staticSite(users int, hash string) string {
	var b strings.Builder
	b.WriteString("loginshare {\n\t\tallow_from 127.0.0.1\n\t\tuser_groups {\n\t\t\tdefault Registered\n\t\t}\n\t\tbackend static {\n")
	for i := 0; i < users; i++ {
		fmt.Fprintf(&b, "\t\t\tuser %s %s {\n\t\t\t\tfull_name \"Bench User %d\"\n\t\t\t\temail %s@example.org\n\t\t\t}\n", userName(i), hash, i, userName(i))
	}
	b.WriteString("\t\t}\n\t}\n\trespond 404")
	return b.String()
}

// targets builds every site this run needs: http and naive always, then
// the module configurations asked for.
func targets(dir *slapdtest.Server, phpRoot string, fpmPort int, configs []string, users int, bcryptHash string, poolSize int) []*target {
	ts := []*target{
		{name: "http", label: "HTTP alone: Caddy `respond`", body: "@login path /loginshare/user\n\theader @login Content-Type \"text/xml; charset=utf-8\"\n\trespond @login `" + respondDoc + "` 200"},
		{name: "naive", label: "naive: PHP script under php-fpm (connect, bind, search, bind per request)", ref: "raw",
			body: fmt.Sprintf("root * %s\n\tphp_fastcgi 127.0.0.1:%d", phpRoot, fpmPort)},
	}
	for _, c := range configs {
		t := &target{name: c, module: true}
		switch c {
		case "preset":
			t.label, t.ref = "module: `preset openldap`, `user_groups { default Registered }` (no group lookup)", "raw"
			t.body = ldapSite(dir, "user_groups {\n\t\t\tdefault Registered\n\t\t}", "", poolSize)
		case "none":
			t.label, t.ref = "module: `groups none`", "raw"
			t.body = ldapSite(dir, groupMapping, "none", poolSize)
		case "memberof":
			t.label, t.ref = "module: `groups memberof`", "raw"
			t.body = ldapSite(dir, groupMapping, "memberof", poolSize)
		case "search":
			t.label, t.ref = "module: `groups search` (a third round trip)", "raw3"
			t.body = ldapSite(dir, groupMapping, `search "`+ldapbackend.GroupFilterOpenLDAP+`"`, poolSize)
		case "nested":
			t.label, t.ref = "module: `groups nested` (client-side walk)", "rawN"
			t.body = ldapSite(dir, groupMapping, "nested", poolSize)
		case "static":
			t.label, t.ref = "module: `backend static` (bcrypt)", "bcrypt"
			t.body = staticSite(users, bcryptHash)
		}
		ts = append(ts, t)
	}
	return ts
}

// caddyfile is a complete config for t on its own port.
func (t *target) caddyfile(logFile string) string {
	admin := "off"
	if t.adminPort != 0 {
		admin = fmt.Sprintf("127.0.0.1:%d", t.adminPort)
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	skip_install_trust
	log {
		output file %s
		level INFO
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	%s
}
`, admin, logFile, t.port, t.body)
}

// start writes t's Caddyfile under root and runs caddy on it.
func (t *target) start(caddyBin, root string, env []string) error {
	var err error
	if t.port, err = freePort(); err != nil {
		return err
	}
	t.log = filepath.Join(root, "caddy-"+t.name+".log")
	conf := filepath.Join(root, "Caddyfile."+t.name)
	if err := os.WriteFile(conf, []byte(t.caddyfile(t.log)), 0o600); err != nil {
		return err
	}
	t.proc, err = startProc("caddy ("+t.name+")", filepath.Join(root, "caddy-"+t.name+".out"), env,
		caddyBin, "run", "--config", conf, "--adapter", "caddyfile")
	if err != nil {
		return err
	}
	if err := waitPort(t.proc, t.port, 30*time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(filepath.Join(root, "caddy-"+t.name+".out")))
	}
	return nil
}

func (t *target) url() string { return fmt.Sprintf("http://127.0.0.1:%d/loginshare/user", t.port) }

// probe logs one account in, so a load run never measures failures.
func (t *target) probe() error {
	f := url.Values{"username": {userName(1)}, "password": {benchPassword}, "ipaddress": {"203.0.113.2"}}
	var last string
	for attempt := 0; attempt < 50; attempt++ { // the LDAP pools may still be connecting
		resp, err := http.Post(t.url(), "application/x-www-form-urlencoded", strings.NewReader(f.Encode()))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), "<result>1</result>") {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s does not log %s in: %s\n%s", t.name, userName(1), last, tail(t.log))
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
