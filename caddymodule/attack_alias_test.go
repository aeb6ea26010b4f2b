package caddymodule

import (
	dbsql "database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// A name typed for one account can find another (an e-mail login here: the
// staff endpoint strips "@realm" from the throttle's key, so
// "admin@evil.example" counts under "admin" while the database finds
// mallory by that e-mail). Mallory's successful logins must not clear
// admin's failure counter: with per_user 3, admin is banned after three
// wrong guesses however many times mallory logs in between, and then even
// admin's right password is refused until the ban ends. Real SQLite through
// the SQL backend.
func TestSuccessUnderAnotherAccountKeepsTheTypedNamesFailures(t *testing.T) {
	file := filepath.Join(t.TempDir(), "staff.db")
	db, err := dbsql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE staff (login TEXT PRIMARY KEY, email TEXT, pass TEXT, first_name TEXT, last_name TEXT)`); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]string{
		{"admin", "admin@corp.example", hashOf(t, "victim-secret"), "Ada", "Admin"},
		{"mallory", "admin@evil.example", hashOf(t, "mallory-pw"), "Mallory", "Mal"},
	} {
		if _, err := db.Exec(`INSERT INTO staff VALUES (?, ?, ?, ?, ?)`, r[0], r[1], r[2], r[3], r[4]); err != nil {
			t.Fatal(err)
		}
	}
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	throttle {
		zone %s
		per_user 3 10m
		per_ip 0
	}
	staff_teams {
		default Support
	}
	backend sql {
		driver sqlite
		dsn %s
		user_query "SELECT login AS username, pass AS password, email, first_name, last_name FROM staff WHERE login = {username} OR email = {username}"
	}
}`, atkFast, uniqueName("alias"), file))
	staff := func(user, pw string, ip int) reply {
		return s.post("/loginshare/staff", form("username", user, "password", pw, "interface", "staff", "ipaddress", fmt.Sprintf("198.51.100.%d", ip)))
	}
	// Mallory first shows the alias logs her in as herself.
	if r := staff("admin@evil.example", "mallory-pw", 200); r.Doc.Result != "1" || r.Doc.Staff == nil || r.Doc.Staff.FirstName == nil || *r.Doc.Staff.FirstName != "Mallory" {
		t.Fatalf("mallory by her e-mail: %s", r.Body)
	}
	ip := 0
	for round := 0; round < 3; round++ {
		for i := 0; i < 2; i++ {
			ip++
			mustFail(t, staff("admin", fmt.Sprintf("guess-%d", ip), ip), 200, DefaultMessageInvalid)
		}
		staff("admin@evil.example", "mallory-pw", 200) // succeeds until admin's name is banned
	}
	if r := staff("admin", "victim-secret", 250); r.Doc.Result == "1" {
		t.Fatalf("six wrong guesses on admin with per_user 3, and admin's password still logs in: mallory's logins reset admin's counter\n%s", r.Body)
	}
}
