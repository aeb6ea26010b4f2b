package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/kayako-loginshare/caddy-loginshare/internal/dbtest"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// TestShopAndADExampleThroughCaddy runs examples/Caddyfile.shop-and-ad with
// its customers in a real PostgreSQL (the example's own schema, a read-only
// account) and its staff in the fixture slapd standing in for Active
// Directory (the AD preset needs AD's schema; the per-endpoint routing is
// what this test is about, and the AD preset is tested against Samba
// elsewhere). Each endpoint must find only its own people.
func TestShopAndADExampleThroughCaddy(t *testing.T) {
	dir := slapdtest.Start(t)
	pg := dbtest.StartPostgres(t)
	db := pg.CreateDatabase(t, "shop")
	hash, err := bcrypt.GenerateFromPassword([]byte("cust-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, db, `CREATE TABLE customers (id serial PRIMARY KEY, login text UNIQUE, pass_hash text, email text,
		first_name text, last_name text, company text, phone text, active boolean NOT NULL DEFAULT true);
	CREATE TABLE groups (id serial PRIMARY KEY, name text);
	CREATE TABLE customer_groups (customer_id int, group_id int);
	INSERT INTO groups (name) VALUES ('wholesale');`)
	pg.Exec(t, db, `INSERT INTO customers (login, pass_hash, email, first_name, last_name, company) VALUES
		('acme', $1, 'Buyer@Acme.example', 'Ann', 'Buyer', 'Acme'),
		('jdoe', $1, 'jdoe@shop.example', 'Shop', 'Jdoe', ''),
		('gone', $1, 'gone@shop.example', 'Gone', 'Away', '')`, string(hash))
	pg.Exec(t, db, `UPDATE customers SET active = false WHERE login = 'gone';
	INSERT INTO customer_groups SELECT c.id, g.id FROM customers c, groups g WHERE c.login = 'acme';`)
	reader, readerPW := pg.CreateReader(t, db)

	raw, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile.shop-and-ad"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	const secret = "shop-example-test-key"
	t.Setenv("LOGINSHARE_KEY", secret)
	t.Setenv("LDAP_BIND_PASSWORD", dir.BindPassword)
	t.Setenv("SHOP_DSN", pg.DSN(reader, readerPW, db))
	port, upstream := freePort(t), freePort(t)
	cfg := string(raw)
	for _, r := range []struct{ old, new string }{
		{"helpdesk.example.com {", fmt.Sprintf("http://127.0.0.1:%d {", port)},
		{"/var/log/caddy/helpdesk-access.log", filepath.Join(tmp, "access.log")},
		{"allow_from 203.0.113.10", "allow_from 127.0.0.1"},
		{"servers ldaps://dc1.corp.example.com ldaps://dc2.corp.example.com", fmt.Sprintf("servers %s\n\t\t\ttls {\n\t\t\t\tca_file %s\n\t\t\t}", dir.LDAPSURL, dir.CAFile)},
		{"preset activedirectory", "preset openldap"},
		{`"CN=svc-kayako,OU=Service Accounts,DC=corp,DC=example,DC=com"`, `"` + dir.BindDN + `"`},
		{`base_dn "DC=corp,DC=example,DC=com"`, `base_dn "` + dir.BaseDN + `"`},
		{"reverse_proxy kayako:80", fmt.Sprintf("reverse_proxy 127.0.0.1:%d", upstream)},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("examples/Caddyfile.shop-and-ad no longer contains %q", r.old)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	cfg += fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\trespond \"kayako\"\n}\n", upstream)
	logFile := filepath.Join(tmp, "caddy.log")
	s := loadConfig(t, testGlobals(logFile, "")+cfg, port, logFile)
	k := "?key=" + secret

	// Customers, from the shop: by login and by e-mail in another case.
	for _, u := range []string{"acme", "BUYER@acme.example"} {
		r := s.post("/loginshare/user"+k, form("username", u, "password", "cust-pw", "ipaddress", "203.0.113.7"))
		if r.Doc.Result != "1" || r.Doc.User == nil || r.Doc.User.UserGroup != "Wholesale customers" || r.Doc.User.FullName != "Ann Buyer" {
			t.Fatalf("customer %s: %s", u, r.Body)
		}
	}
	mustFail(t, s.post("/loginshare/user"+k, form("username", "acme", "password", "wrong")), 200, DefaultMessageInvalid)
	mustFail(t, s.post("/loginshare/user"+k, form("username", "gone", "password", "cust-pw")), 200, DefaultMessageInvalid)
	// The directory's jdoe is not a customer: the user endpoint finds the
	// shop's jdoe (another password), never the directory's.
	mustFail(t, s.post("/loginshare/user"+k, form("username", "jdoe", "password", slapdtest.Password)), 200, DefaultMessageInvalid)
	if r := s.post("/loginshare/user"+k, form("username", "jdoe", "password", "cust-pw")); r.Doc.Result != "1" || r.Doc.User.UserGroup != "Registered" {
		t.Fatalf("shop's jdoe: %s", r.Body)
	}

	// Staff, from the directory only: a customer is nobody there.
	r := s.post("/loginshare/staff"+k, form("username", "jdoe", "password", slapdtest.Password, "interface", "staff"))
	if r.Doc.Result != "1" || r.Doc.Staff == nil || r.Doc.Staff.Team == nil || *r.Doc.Staff.Team != "Support" {
		t.Fatalf("staff jdoe: %s", r.Body)
	}
	mustFail(t, s.post("/loginshare/staff"+k, form("username", "acme", "password", "cust-pw", "interface", "staff")), 200, DefaultMessageInvalid)

	// Audit lines name the backend that decided on each endpoint.
	var shop, corp int
	for _, l := range auditLines(t, logFile) {
		switch {
		case l["endpoint"] == "user" && l["backend"] == "shop":
			shop++
		case l["endpoint"] == "staff" && l["backend"] == "corp":
			corp++
		case l["backend"] != "":
			t.Errorf("endpoint %v answered by backend %v", l["endpoint"], l["backend"])
		}
	}
	if shop != 6 || corp != 2 {
		t.Errorf("%d user lines from shop (want 6), %d staff lines from corp (want 2)", shop, corp)
	}
}
