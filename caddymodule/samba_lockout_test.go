package caddymodule

// Issue 7 against Active Directory (a private Samba DC, internal/sambatest):
//
//   - point 1: one burst of wrong passwords moved badPwdCount 0 → 10 and
//     locked the account. A burst may move badPwdCount by at most per_user,
//     and an account whose lockout threshold (3, lockme) is above per_user (2)
//     is never locked by one;
//   - the canonical gate (design.md, throttle bullet and "The backend's
//     gate"): on the user endpoint the typed keys of a UPN and of the
//     sAMAccountName differ (the @realm is kept for e-mail logins), so only
//     the count under the account the directory found puts them in one
//     bucket. rroe's UPN (richard.roe@…) shares nothing with "rroe" as text.
//
// Samba binds at a few hundred per second: the bursts are small.

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/internal/sambatest"
)

// atkSambaSite serves the Samba DC (ldaps://, preset activedirectory) behind
// throttleBlock; everyone the directory authenticates is Registered.
func atkSambaSite(t *testing.T, dir *sambatest.Server, throttleBlock string) *site {
	t.Helper()
	t.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
	return startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	%s
	user_groups {
		default Registered
	}
	backend ldap {
		servers %s
		tls {
			ca_file %s
		}
		preset activedirectory
		bind_dn "%s"
		bind_password {env.LOGINSHARE_TEST_BIND_PASSWORD}
		base_dn "%s"
	}
}`, atkFast, throttleBlock, dir.LDAPSURL, dir.CAFile, dir.BindDN, dir.BaseDN))
}

func TestActiveDirectoryBurstsAndSpellingsShareOneBudget(t *testing.T) {
	dir := sambatest.Start(t)

	t.Run("a burst moves badPwdCount by at most per_user", func(t *testing.T) {
		const perUser, burst = 5, 20
		s := atkSambaSite(t, dir, `throttle {
		per_user 5 10m
		per_ip 20 10m
		max_keys 7101
	}`)
		before := dir.BadPwdCount(t, sambatest.JDoeDN)
		rs := atkBurst(t, s, "/loginshare/user", burst, func(i int) url.Values {
			return form("username", sambatest.JDoe, "password", fmt.Sprintf("Wrong-%d", i), "ipaddress", "203.0.113.100")
		})
		atkNoSuccess(t, "burst", rs)
		moved := dir.BadPwdCount(t, sambatest.JDoeDN) - before
		t.Logf("%d simultaneous wrong passwords for jdoe: badPwdCount moved by %d", burst, moved)
		if moved == 0 {
			t.Fatal("badPwdCount did not move: the burst never reached the directory, the test proves nothing")
		}
		if moved > perUser {
			t.Errorf("%d simultaneous wrong passwords moved jdoe's badPwdCount by %d; per_user is %d", burst, moved, perUser)
		}
	})

	t.Run("a burst cannot lock an account whose threshold is above per_user", func(t *testing.T) {
		const perUser, burst = 2, 20
		if perUser >= sambatest.LockoutThreshold {
			t.Fatalf("per_user %d must be below lockme's lockout threshold %d", perUser, sambatest.LockoutThreshold)
		}
		s := atkSambaSite(t, dir, `throttle {
		per_user 2 10m
		per_ip 0
		max_keys 7102
	}`)
		before := dir.BadPwdCount(t, sambatest.LockMeDN)
		rs := atkBurst(t, s, "/loginshare/user", burst, func(i int) url.Values {
			return form("username", sambatest.LockMe, "password", fmt.Sprintf("Wrong-%d", i), "ipaddress", fmt.Sprintf("198.51.100.%d", i+1))
		})
		atkNoSuccess(t, "burst", rs)
		moved := dir.BadPwdCount(t, sambatest.LockMeDN) - before
		t.Logf("%d simultaneous wrong passwords for lockme: badPwdCount moved by %d", burst, moved)
		if moved == 0 {
			t.Fatal("badPwdCount did not move: the burst never reached the directory, the test proves nothing")
		}
		if moved > perUser {
			t.Errorf("%d simultaneous wrong passwords moved lockme's badPwdCount by %d; per_user is %d", burst, moved, perUser)
		}
		// Not locked: the owner's own password still binds (directly, not
		// through the handler, where lockme is banned for a while now).
		c := dir.Dial(t, dir.LDAPSURL)
		if err := c.Bind(sambatest.LockMeDN, sambatest.LockMePassword); err != nil {
			t.Errorf("one burst locked lockme out of Active Directory (threshold %d): %v", sambatest.LockoutThreshold, err)
		}
	})

	// Three wrong passwords under mixed spellings (per_user 3), then the
	// right password under each spelling: refused, with no bind (a bind with
	// the right password would reset badPwdCount to 0).
	gate := func(t *testing.T, maxKeys int, dn, password string, wrong, right []string) {
		t.Helper()
		s := atkSambaSite(t, dir, fmt.Sprintf(`throttle {
		per_user 3 10m
		per_ip 0
		max_keys %d
	}`, maxKeys))
		before := dir.BadPwdCount(t, dn)
		for i, u := range wrong {
			mustFail(t, s.post("/loginshare/user", form("username", u, "password", fmt.Sprintf("Wrong-%d", i), "ipaddress", "203.0.113.110")), 200, DefaultMessageInvalid)
		}
		afterWrong := dir.BadPwdCount(t, dn)
		if afterWrong == before {
			t.Fatalf("the wrong passwords did not reach the directory (badPwdCount stays %d)", before)
		}
		for _, u := range right {
			r := s.post("/loginshare/user", form("username", u, "password", password, "ipaddress", "203.0.113.111"))
			if r.Doc.Result != "0" {
				t.Errorf("%q logged in with the right password after %d failures of the same account under %q (per_user 3)", u, len(wrong), wrong)
			}
		}
		if got := dir.BadPwdCount(t, dn); got != afterWrong {
			t.Errorf("badPwdCount went from %d to %d during the ban: the right password was bound", afterWrong, got)
		}
	}
	t.Run("rroe: sAMAccountName and a UPN with another name share one bucket", func(t *testing.T) {
		gate(t, 7103, sambatest.RRoeDN, sambatest.RRoePassword,
			[]string{sambatest.RRoe, sambatest.RRoe, sambatest.RRoeUPN},
			[]string{sambatest.RRoe, sambatest.RRoeUPN, sambatest.Domain + `\` + sambatest.RRoe})
	})
	t.Run("jdoe: sAMAccountName, DOMAIN\\user and UPN share one bucket", func(t *testing.T) {
		gate(t, 7104, sambatest.JDoeDN, sambatest.JDoePassword,
			[]string{sambatest.JDoe, sambatest.Domain + `\` + sambatest.JDoe, sambatest.JDoeUPN},
			[]string{sambatest.JDoeUPN, sambatest.JDoe, sambatest.Domain + `\` + sambatest.JDoe})
	})
}
