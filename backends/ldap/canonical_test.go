package ldap

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// The identity carries the directory's username, never the typed one: Kayako
// links staff by it, so a fallback would make one account per spelling.
func TestMissingUsernameAttributeIsAnOperatorErrorNotTheTypedName(t *testing.T) {
	leakCheck(t)
	s := slapdtest.Start(t)
	cfg := openldap(s)
	cfg.Attributes = &Attributes{Username: "employeeNumber"} // not on the fixture entries
	l, logs := provision(t, cfg)
	id, err := login(t, l, "JDOE", slapdtest.Password)
	wantClass(t, err, backends.Unavailable)
	if id.Username != "" {
		t.Errorf("identity %q returned", id.Username)
	}
	if logs.FilterMessage("LDAP entry has no username attribute; check attributes.username and the service account's read rights").Len() != 1 {
		t.Errorf("no ERROR naming the attribute: %v", logs.All())
	}
	// The control: with the real attribute the canonical name comes back.
	cfg2 := openldap(s)
	l2, _ := provision(t, cfg2)
	id, err = login(t, l2, "JDOE", slapdtest.Password)
	if err != nil || id.Username != slapdtest.JDoe {
		t.Fatalf("canonical username %q, err %v", id.Username, err)
	}
}

func TestUserFilterWithDNPlaceholderIsRefused(t *testing.T) {
	err := new(LDAP).UnmarshalCaddyfile(caddyfile.NewTestDispenser("ldap {\n user_filter \"(&(uid={username})(member={dn}))\"\n}"))
	if err == nil || !strings.Contains(err.Error(), "{dn} is only known after this search") || !strings.Contains(err.Error(), "Testfile:2") {
		t.Errorf("Caddyfile: %v", err)
	}
	cfg := &LDAP{Servers: []string{"ldaps://127.0.0.1:1"}, BaseDN: "dc=example,dc=org", BindDN: "cn=svc,dc=example,dc=org",
		BindPassword: "x", UserFilter: "(&(uid={username})(member={dn}))"}
	if _, _, err := tryProvision(t, cfg); err == nil || !strings.Contains(err.Error(), "{dn}") {
		t.Errorf("JSON: %v", err)
	}
}

// A password written into a servers URL is refused without being quoted,
// whether the URL parses or not.
func TestServerURLWithAPasswordIsRefusedWithoutQuotingIt(t *testing.T) {
	for _, s := range []string{"ldaps://cn=admin:S3cretPw@dc1.example.org", "ldaps://admin:S3cretPw@dc1.example.org:x", "ldap://admin:S3cretPw@%zz"} {
		err := checkServerURL(s, false, false)
		if err == nil {
			t.Fatalf("%s accepted", s)
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
}
