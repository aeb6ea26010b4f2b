package ldap

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfileEveryOption(t *testing.T) {
	in := `backend ldap {
		servers ldaps://dc1.example.com ldap://dc2.example.com:389
		servers ldaps://dc3.example.com:3269
		starttls
		insecure_plaintext
		tls {
			ca_file /etc/ssl/corp-ca.pem
			server_name ldap.example.com
			client_cert /etc/ssl/c.pem /etc/ssl/k.pem
			insecure_skip_verify
		}
		preset openldap
		bind_dn "cn=svc,dc=example,dc=org"
		bind_password {env.LDAP_PW}
		base_dn dc=example,dc=org
		user_base_dn ou=people,dc=example,dc=org
		user_filter "(&(objectClass=person)(uid={username}))"
		attributes {
			username     uid
			first_name   givenName
			last_name    sn
			full_name    displayName
			email        mail
			email        otherMailbox proxyAddresses
			phone        telephoneNumber
			mobile       mobile
			designation  title
			organization o
		}
		groups memberof
		groups search "(member={dn})"
		groups nested
		group_base_dn ou=groups,dc=example,dc=org
		group_name_attribute cn
		username_transform strip_domain
		dial_timeout    1s
		request_timeout 2s
		pool_size       3
		bind_pool_size  4
		pool_acquire_timeout 500ms
		idle_timeout    1m
		server_cooldown 10s
	}`
	d := caddyfile.NewTestDispenser(in)
	d.Next()
	d.NextArg()
	unm, err := caddyfile.UnmarshalModule(d, "loginshare.backends.ldap")
	if err != nil {
		t.Fatal(err)
	}
	got := unm.(*LDAP)
	want := &LDAP{
		Servers:           []string{"ldaps://dc1.example.com", "ldap://dc2.example.com:389", "ldaps://dc3.example.com:3269"},
		StartTLS:          true,
		InsecurePlaintext: true,
		TLS:               &TLS{CAFile: "/etc/ssl/corp-ca.pem", ServerName: "ldap.example.com", ClientCertFile: "/etc/ssl/c.pem", ClientKeyFile: "/etc/ssl/k.pem", InsecureSkipVerify: true},
		Preset:            "openldap",
		BindDN:            "cn=svc,dc=example,dc=org",
		BindPassword:      "{env.LDAP_PW}",
		BaseDN:            "dc=example,dc=org",
		UserBaseDN:        "ou=people,dc=example,dc=org",
		UserFilter:        "(&(objectClass=person)(uid={username}))",
		Attributes: &Attributes{Username: "uid", FirstName: "givenName", LastName: "sn", FullName: "displayName",
			Email: []string{"mail", "otherMailbox", "proxyAddresses"}, Phone: "telephoneNumber", Mobile: "mobile",
			Designation: "title", Organization: "o"},
		Groups:             []GroupLookup{{Method: "memberof"}, {Method: "search", Filter: "(member={dn})"}, {Method: "nested"}},
		GroupBaseDN:        "ou=groups,dc=example,dc=org",
		GroupNameAttribute: "cn",
		UsernameTransform:  "strip_domain",
		DialTimeout:        caddy.Duration(time.Second),
		RequestTimeout:     caddy.Duration(2 * time.Second),
		PoolSize:           3,
		BindPoolSize:       4,
		PoolAcquireTimeout: caddy.Duration(500 * time.Millisecond),
		IdleTimeout:        caddy.Duration(time.Minute),
		ServerCooldown:     caddy.Duration(10 * time.Second),
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got\n%s\nwant\n%s", g, w)
	}
	// The JSON keeps the placeholder, never a resolved secret.
	b, _ := json.Marshal(got)
	for _, key := range []string{`"servers"`, `"starttls"`, `"insecure_plaintext"`, `"ca_file"`, `"server_name"`, `"client_cert"`,
		`"client_key"`, `"insecure_skip_verify"`, `"preset"`, `"bind_dn"`, `"bind_password":"{env.LDAP_PW}"`, `"base_dn"`,
		`"user_filter"`, `"first_name"`, `"full_name"`, `"email"`, `"designation"`, `"organization"`, `"groups"`,
		`"group_base_dn"`, `"group_name_attribute"`, `"username_transform"`, `"dial_timeout"`, `"request_timeout"`,
		`"pool_size"`, `"bind_pool_size"`, `"pool_acquire_timeout"`, `"idle_timeout"`, `"server_cooldown"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"scalar twice", "ldap {\n base_dn dc=a\n base_dn dc=b\n}", "Testfile:3"},
		{"flag twice", "ldap {\n starttls\n\n starttls\n}", "Testfile:4"},
		{"tls twice", "ldap {\n tls {\n }\n tls {\n }\n}", "Testfile:4"},
		{"unknown option", "ldap {\n servers ldaps://a\n frobnicate yes\n}", "Testfile:3"},
		{"unknown tls option", "ldap {\n tls {\n  min_version 1.3\n }\n}", "Testfile:3"},
		{"unknown attribute", "ldap {\n attributes {\n  shoe_size x\n }\n}", "Testfile:3"},
		{"attribute twice", "ldap {\n attributes {\n  username uid\n  username cn\n }\n}", "Testfile:4"},
		{"bad DN", "ldap {\n bind_dn notadn\n}", "Testfile:2"},
		{"bad base DN", "ldap {\n\n base_dn \"dc=example,,\"\n}", "Testfile:3"},
		{"bad group base", "ldap {\n group_base_dn x\n}", "Testfile:2"},
		{"filter without placeholder", "ldap {\n user_filter (uid=jdoe)\n}", "Testfile:2"},
		{"filter syntax", "ldap {\n user_filter \"(uid={username}\"\n}", "Testfile:2"},
		{"template without placeholder", "ldap {\n bind_dn_template uid=x,dc=a\n}", "Testfile:2"},
		{"template with filter", "ldap {\n user_filter (uid={username})\n bind_dn_template uid={username},dc=a\n}", "direct bind"},
		{"bad preset", "ldap {\n preset novell\n}", "Testfile:2"},
		{"bad groups", "ldap {\n groups everything\n}", "Testfile:2"},
		{"groups search without filter", "ldap {\n groups search\n}", "Testfile:2"},
		{"groups search filter without placeholder", "ldap {\n groups search (cn=x)\n}", "Testfile:2"},
		{"groups memberof with arg", "ldap {\n groups memberof x\n}", "Testfile:2"},
		{"bad transform", "ldap {\n username_transform lowercase\n}", "Testfile:2"},
		{"bad duration", "ldap {\n dial_timeout soon\n}", "Testfile:2"},
		{"negative duration", "ldap {\n request_timeout -1s\n}", "Testfile:2"},
		{"bad pool size", "ldap {\n pool_size 0\n}", "Testfile:2"},
		{"ldap without starttls", "ldap {\n servers ldap://dc1\n}", "clear text"},
		{"ldap without starttls names the servers line", "ldap {\n servers ldaps://dc1\n pool_size 2\n servers ldap://dc2\n}", "Testfile:4"},
		{"bad scheme", "ldap {\n servers http://dc1\n}", "Testfile:2"},
		{"servers without args", "ldap {\n servers\n}", "Testfile:2"},
		{"missing argument", "ldap {\n base_dn\n}", "Testfile:2"},
		{"extra argument", "ldap {\n base_dn dc=a dc=b\n}", "Testfile:2"},
		{"argument after ldap", "ldap extra {\n}", "Testfile:1"},
		{"client_cert one file", "ldap {\n tls {\n  client_cert a.pem\n }\n}", "Testfile:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := new(LDAP).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestPresetsExpandedConfig(t *testing.T) {
	// freeipa and lldap have no server in CI: they are tested by their
	// expanded configuration only.
	for _, tc := range []struct {
		preset string
		want   *LDAP
	}{
		{PresetActiveDirectory, &LDAP{UserBaseDN: "dc=example,dc=org", UserFilter: FilterActiveDirectory,
			Attributes:        &Attributes{Username: "sAMAccountName", Email: []string{"mail", "proxyAddresses"}, FullName: "displayName", FirstName: "givenName", LastName: "sn"},
			Groups:            []GroupLookup{{Method: GroupsNested}},
			UsernameTransform: TransformStripDomain}},
		{PresetOpenLDAP, &LDAP{UserBaseDN: "dc=example,dc=org", UserFilter: FilterOpenLDAP,
			Attributes:        &Attributes{Username: "uid", Email: []string{"mail"}, FullName: "cn", FirstName: "givenName", LastName: "sn"},
			Groups:            []GroupLookup{{Method: GroupsSearch, Filter: GroupFilterOpenLDAP}},
			UsernameTransform: TransformNone}},
		{PresetFreeIPA, &LDAP{UserBaseDN: "cn=users,cn=accounts,dc=example,dc=org", UserFilter: FilterFreeIPA,
			Attributes:        &Attributes{Username: "uid", Email: []string{"mail"}, FullName: "cn", FirstName: "givenName", LastName: "sn"},
			Groups:            []GroupLookup{{Method: GroupsMemberOf}},
			UsernameTransform: TransformNone}},
		{PresetLLDAP, &LDAP{UserBaseDN: "ou=people,dc=example,dc=org", UserFilter: FilterLLDAP,
			Attributes:        &Attributes{Username: "uid", Email: []string{"mail"}, FullName: "cn", FirstName: "givenname", LastName: "sn"},
			Groups:            []GroupLookup{{Method: GroupsMemberOf}},
			UsernameTransform: TransformNone}},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			l := &LDAP{Preset: tc.preset, BaseDN: "dc=example,dc=org", Servers: []string{"ldaps://dir.example.org"}}
			if err := l.applyPreset(); err != nil {
				t.Fatal(err)
			}
			if err := l.check(); err != nil {
				t.Fatal(err)
			}
			a, w := l.Attributes, tc.want.Attributes
			if l.UserBaseDN != tc.want.UserBaseDN || l.UserFilter != tc.want.UserFilter ||
				a.Username != w.Username || !reflect.DeepEqual(a.Email, w.Email) || a.FullName != w.FullName ||
				a.FirstName != w.FirstName || a.LastName != w.LastName ||
				!reflect.DeepEqual(l.Groups, tc.want.Groups) || l.UsernameTransform != tc.want.UsernameTransform {
				t.Errorf("expanded:\n%+v %+v", l, a)
			}
			if l.GroupBaseDN != "dc=example,dc=org" || l.GroupNameAttribute != "cn" || l.PoolSize != 8 ||
				l.DialTimeout != DefaultDialTimeout || l.ServerCooldown != DefaultServerCooldown {
				t.Errorf("defaults not applied: %+v", l)
			}
		})
	}
	// Explicit options win over the preset.
	l := &LDAP{Preset: PresetActiveDirectory, BaseDN: "dc=example,dc=org", UserFilter: "(cn={username})",
		Attributes: &Attributes{Username: "uid", Email: []string{"userPrincipalName"}}, UsernameTransform: TransformNone,
		Groups: []GroupLookup{{Method: GroupsMemberOf}}}
	if err := l.applyPreset(); err != nil {
		t.Fatal(err)
	}
	if l.UserFilter != "(cn={username})" || l.Attributes.Username != "uid" || l.Attributes.Email[0] != "userPrincipalName" ||
		len(l.Attributes.Email) != 1 || l.UsernameTransform != TransformNone || l.Groups[0].Method != GroupsMemberOf ||
		l.Attributes.FullName != "displayName" {
		t.Errorf("explicit options lost: %+v %+v", l, l.Attributes)
	}
}

func TestProvisionErrors(t *testing.T) {
	leakCheck(t)
	base := func() *LDAP {
		return &LDAP{Servers: []string{"ldaps://dir.example.org"}, BaseDN: "dc=example,dc=org"}
	}
	for _, tc := range []struct {
		name string
		mod  func(*LDAP)
		want string
	}{
		{"no servers", func(l *LDAP) { l.Servers = nil }, "servers"},
		{"ldap without starttls", func(l *LDAP) { l.Servers = []string{"ldap://dir.example.org"} }, "clear text"},
		{"template with filter", func(l *LDAP) { l.BindDNTemplate = "uid={username},dc=x"; l.UserFilter = "(uid={username})" }, "bind_dn_template"},
		{"template with bind_dn", func(l *LDAP) { l.BindDNTemplate = "uid={username},dc=x"; l.BindDN = "cn=svc,dc=x" }, "bind_dn_template"},
		{"no base", func(l *LDAP) { l.BaseDN = "" }, "base_dn"},
		{"bad preset", func(l *LDAP) { l.Preset = "edirectory" }, "preset"},
		{"bad JSON groups", func(l *LDAP) { l.Groups = []GroupLookup{{Method: "all"}} }, "groups"},
		{"missing ca file", func(l *LDAP) { l.TLS = &TLS{CAFile: "/nonexistent/ca.pem"} }, "ca_file"},
		{"half client cert", func(l *LDAP) { l.TLS = &TLS{ClientCertFile: "/x.pem"} }, "client_cert"},
		{"bad transform", func(l *LDAP) { l.UsernameTransform = "upper" }, "username_transform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := base()
			tc.mod(l)
			_, _, err := tryProvision(t, l)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	leakCheck(t)
	l := &LDAP{Servers: []string{"ldaps://dir.example.org"}, BaseDN: "dc=example,dc=org", TLS: &TLS{InsecureSkipVerify: true}}
	_, logs := provision(t, l)
	if logs.FilterMessageSnippet("insecure_skip_verify").FilterLevelExact(zapcore.WarnLevel).Len() != 1 {
		t.Fatalf("no WARN for insecure_skip_verify: %v", logs.All())
	}
}
