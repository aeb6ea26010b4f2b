package caddymodule

// Issue 7, point 7: risky configurations started silently. Each must log a
// WARN at provision: `throttle off`; per_user 0 with per_ip 0;
// failure_delay below 100ms; ldap:// with insecure_plaintext; starttls on an
// ldaps:// URL; an LDAP request_timeout longer than the handler's timeout;
// static hashes of bcrypt cost below 10. Each risky config is paired with
// the nearest safe one, which must log no such WARN. The provision logs are
// Caddy's own JSON log lines (the harness logs everything to a file).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// atkLogLines returns every JSON log line of file.
func atkLogLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// atkText is a log line's message and string fields (not its logger name,
// level or time), lower-cased, for keyword matching.
func atkText(l map[string]any) string {
	var b strings.Builder
	for k, v := range l {
		switch k {
		case "logger", "level", "ts":
			continue
		}
		if s, ok := v.(string); ok {
			b.WriteString(strings.ToLower(s))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func atkMentions(l map[string]any, keywords []string) bool {
	text := atkText(l)
	for _, k := range keywords {
		if strings.Contains(text, k) {
			return true
		}
	}
	return false
}

func atkBcrypt(t *testing.T, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestRiskyConfigurationsWarnAtProvision(t *testing.T) {
	dir := slapdtest.Start(t)
	t.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
	fake := func(name string) string {
		return fmt.Sprintf("backend testfake {\n\t\tname %s\n\t\tuser jdoe s3cret\n\t}", name)
	}
	ldap := func(url, extra string) string {
		return fmt.Sprintf(`backend ldap {
		servers %s
		%s
		tls {
			ca_file %s
		}
		preset openldap
		bind_dn %s
		bind_password {env.LOGINSHARE_TEST_BIND_PASSWORD}
		base_dn %s
	}`, url, extra, dir.CAFile, dir.BindDN, dir.BaseDN)
	}
	static := func(cost int) string {
		return fmt.Sprintf(`backend static {
		user jdoe %s {
			full_name "Jane Doe"
			email jane@example.org
		}
	}`, atkBcrypt(t, cost))
	}

	for _, tc := range []struct {
		name        string
		keywords    []string // lower case; the WARN mentions one of them
		risky, safe string   // handler options and backend blocks
	}{
		{
			"throttle off", []string{"throttl", "brute"},
			"throttle off\n\t" + fake("atk-warn-1"),
			fake("atk-warn-1"),
		},
		{
			"per_user 0 with per_ip 0", []string{"throttl", "brute", "per_user", "per_ip"},
			"throttle {\n\t\tper_user 0\n\t\tper_ip 0\n\t}\n\t" + fake("atk-warn-2"),
			"throttle {\n\t\tper_user 5 10m\n\t\tper_ip 20 10m\n\t}\n\t" + fake("atk-warn-2"),
		},
		{
			"failure_delay below 100ms", []string{"failure_delay", "failure delay"},
			"failure_delay 50ms\n\t" + fake("atk-warn-3"),
			"failure_delay 100ms\n\t" + fake("atk-warn-3"),
		},
		{
			"ldap:// with insecure_plaintext", []string{"plaintext", "clear text", "cleartext", "unencrypted"},
			ldap(dir.URL, "insecure_plaintext"),
			ldap(dir.URL, "starttls"),
		},
		{
			"starttls on an ldaps:// URL", []string{"starttls"},
			ldap(dir.LDAPSURL, "starttls"),
			ldap(dir.LDAPSURL, ""),
		},
		{
			"LDAP request_timeout longer than the handler's timeout", []string{"request_timeout"},
			"timeout 3s\n\t" + ldap(dir.LDAPSURL, "request_timeout 5s"),
			"timeout 3s\n\t" + ldap(dir.LDAPSURL, "request_timeout 2s"),
		},
		{
			"static bcrypt cost below 10", []string{"cost"},
			static(bcrypt.MinCost),
			static(10),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, risky := range []bool{true, false} {
				body := tc.safe
				if risky {
					body = tc.risky
				}
				s := startCaddy(t, "", "loginshare {\n\t"+body+"\n}")
				if err := stopCaddy(); err != nil {
					t.Fatal(err)
				}
				lines := atkLogLines(t, s.logFile)
				// The capture works: the handler's open-endpoint WARN (no
				// allow_from, no secret in these configs) is in it.
				captured := false
				var warns, others []map[string]any
				for _, l := range lines {
					if l["level"] == "warn" && strings.Contains(fmt.Sprint(l["msg"]), "open to anyone") {
						captured = true
					}
					if !atkMentions(l, tc.keywords) || !strings.Contains(fmt.Sprint(l["logger"]), "loginshare") {
						continue
					}
					if l["level"] == "warn" {
						warns = append(warns, l)
					} else {
						others = append(others, l)
					}
				}
				if !captured {
					t.Fatalf("the provision logs were not captured (no open-endpoint WARN in %s)", s.logFile)
				}
				switch {
				case risky && len(warns) == 0 && len(others) > 0:
					t.Errorf("risky config:\n\t%s\nlogged it, but not at WARN: %v", body, others)
				case risky && len(warns) == 0:
					t.Errorf("risky config started without a WARN mentioning any of %q:\n\t%s", tc.keywords, body)
				case !risky && len(warns) > 0:
					t.Errorf("safe config:\n\t%s\nlogged a WARN about it: %v", body, warns)
				}
			}
		})
	}
}
