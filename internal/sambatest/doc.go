// Package sambatest runs a private Samba Active Directory domain controller
// for tests that need real AD semantics: UPN, DOMAIN\user and DN binds, the
// transitive-membership matching rule 1.2.840.113556.1.4.1941, AD bind
// sub-codes in the diagnostic text, proxyAddresses and the
// userAccountControl disabled flag. Use the slapdtest package for load and
// for everything that is not AD-specific: Samba binds at a few hundred per
// second and its ports are fixed.
//
// # Requirements
//
// Debian 12 (Samba 4.17), run as root:
//
//	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
//	    samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user
//
// samba-ad-provision is only recommended by samba-ad-dc, but provisioning
// fails without it. No debconf preseed is needed, and nothing has to be done
// after the install: the system /etc/samba/smb.conf is not used. Where a
// policy-rc.d forbids starting services (Docker images, the CI machines) no
// daemon starts. Under systemd, smbd, nmbd and winbind start with Debian's
// standalone smb.conf, which is harmless (they do not use the LDAP ports),
// and samba-ad-dc does not (its ExecCondition sees no DC configuration).
// Without the packages, or without root, Start skips the test (t.Fatal under
// CI=true).
//
// # What runs
//
// Samba's LDAP service only (server services = ldap: no SMB, RPC, Kerberos,
// NetBIOS or DNS), provisioned with --dns-backend=NONE, interfaces = lo and
// bind interfaces only = yes. It listens on 127.0.0.1 and ::1 at the standard
// ports 389 (LDAP), 636 (LDAPS), 3268 and 3269 (global catalog): Samba 4.17
// has no option to choose them. Hence one Server at a time per machine: Start
// takes an exclusive lock (/tmp/caddy-loginshare-sambatest.lock) that is held
// until the test's Cleanup, so parallel test binaries take turns, and fails
// naming the port if another program holds one of the four.
// ldap server require strong auth = no lets simple binds run over plain
// ldap:// (AD's default refuses them with result 8).
//
// Samba runs as `samba -F --no-process-group` in a process group of its own
// (its PID is the group ID); Stop and Cleanup send SIGTERM to that group and
// wait for every member to exit (SIGKILL after 15 s). If the test binary dies
// without its cleanups, Samba receives SIGTERM (Pdeathsig), and the next
// Start stops any Samba a dead holder of the lock left behind, by the PID
// recorded in the lock file.
//
// # Template cache
//
// Provisioning and loading the fixture take 5 s on an idle 2-core machine
// (15 s on a busy one), so
// the result is kept as a template (about 33 MB) in
// $SAMBATEST_CACHE_DIR, or else os.UserCacheDir()/caddy-loginshare-sambatest,
// named by a hash of the Samba version, the provisioning arguments and the
// fixture; a change to any of them builds a new template. Each Start copies
// the template into a directory of its own (so no change leaks from one test
// to the next), writes a fresh CA and server certificate, and starts Samba:
// 0.3–1 s until the first LDAPS bind (up to 3 s on a busy machine). Stopping
// takes about 25 ms.
//
// # Fixture
//
// Realm SAMDOM.EXAMPLE.COM, NetBIOS domain SAMDOM, base DN
// DC=samdom,DC=example,DC=com; users and groups in CN=Users. Every user's CN
// differs from its sAMAccountName (CN "Jane Doe", sAMAccountName jdoe).
// See the constants for names, passwords and DNs:
//
//   - svc-kayako (CN "Kayako Service"): the service account, an ordinary
//     user.
//   - jdoe: givenName, sn, displayName, mail Jane.Doe@Example.com,
//     proxyAddresses "SMTP:jane.doe@example.com" and "smtp:jd@example.com"
//     (the AD schema Samba ships has proxyAddresses), title,
//     telephoneNumber. Direct member of helpdesk-users and Tier1; Tier1 is a
//     member of helpdesk-staff, so jdoe's memberOf does not list
//     helpdesk-staff while the 1.2.840.113556.1.4.1941 rule finds it.
//   - admin1: member of helpdesk-admins.
//   - rroe: UPN richard.roe@samdom.example.com (not the sAMAccountName), only
//     member of the group CN "Helpdesk Agents EU", sAMAccountName
//     helpdesk-agents-eu.
//   - disabled1, expired1, locked1, lockme, mustchange1, nohours1,
//     restricted1: one per bind sub-code, below.
//
// Every fixture password is set never to expire (except mustchange1's, which
// must be changed). The domain lockout threshold is 1000, so wrong binds are
// counted in badPwdCount (Server.BadPwdCount) without locking anyone in a
// test; a fine-grained password policy (PSODN) locks locked1 and lockme after
// 3 wrong binds, for 10 years.
//
// # Bind sub-codes Samba 4.17.12 returns
//
// A failed simple bind is result 49 (invalidCredentials) with a diagnostic
// such as "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext
// error, data 52e, v1db1". Measured, and asserted by this package's tests:
//
//	52e  wrong password; also an unknown user (Samba never sends 525),
//	     and a bare sAMAccountName ("jdoe") as bind name, which Samba does
//	     not accept: use a DN, a UPN or DOMAIN\user
//	530  logon hours deny every hour (nohours1)
//	531  workstation restriction (restricted1: userWorkstations NOWHERE;
//	     Samba checks a simple bind against the DC's own name)
//	533  account disabled (disabled1)
//	701  account expired (expired1, accountExpires 2020-01-01)
//	773  password must be changed (mustchange1, pwdLastSet 0), right
//	     password only; a wrong one gives 52e. (An earlier note in the
//	     project's test-infra reference said Samba lets such a user bind; it
//	     does not: it answers 773.)
//	775  account locked out (locked1), with the right password and with a
//	     wrong one. The wrong bind that reaches the threshold still answers
//	     52e; the next bind answers 775.
//
// 532 (password expired) is not reproducible: Samba treats a maximum
// password age under one day as "never expires", and pwdLastSet can only be
// written as 0 or -1, so no password can be made old enough.
//
// # Other behaviour worth knowing
//
//   - A subtree search from the base DN returns continuation references
//     (e.g. ldaps://samdom.example.com/CN=Configuration,...) next to the
//     entries, without an error.
//   - Samba's log (Server.LogFile, level 1 with auth_audit:3) has one "Auth:"
//     line per bind with the bind name and NT status, never the password: a
//     test can count the binds that reached the directory.
package sambatest
