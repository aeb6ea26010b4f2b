package sambatest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// PSO lockout settings (negative intervals in 100 ns units, as AD stores them).
const (
	psoObservationWindow = -30 * 60 * 10_000_000                 // 30 minutes
	psoLockoutDuration   = -10 * 365 * 24 * 60 * 60 * 10_000_000 // 10 years: Locked stays locked
	psoMaxPasswordAge    = -42 * 24 * 60 * 60 * 10_000_000       // the domain default
)

// loadFixtures adds the fixture to a freshly provisioned directory. c must be
// bound as Administrator over LDAPS (AD accepts unicodePwd only on an
// encrypted connection).
func loadFixtures(c *ldap.Conn) error {
	m := ldap.NewModifyRequest(BaseDN, nil)
	m.Replace("lockoutThreshold", []string{strconv.Itoa(DomainLockoutThreshold)})
	if err := c.Modify(m); err != nil {
		return fmt.Errorf("set domain lockoutThreshold: %w", err)
	}
	for _, u := range fixtureUsers {
		if err := addUser(c, u); err != nil {
			return fmt.Errorf("add user %s: %w", u.sam, err)
		}
	}
	for _, g := range fixtureGroups {
		a := ldap.NewAddRequest(groupDN(g), nil)
		a.Attribute("objectClass", []string{"top", "group"})
		a.Attribute("cn", []string{g.cn})
		a.Attribute("sAMAccountName", []string{g.sam})
		a.Attribute("member", g.members)
		if err := c.Add(a); err != nil {
			return fmt.Errorf("add group %s: %w", g.cn, err)
		}
	}
	a := ldap.NewAddRequest(PSODN, nil)
	a.Attribute("objectClass", []string{"top", "msDS-PasswordSettings"})
	a.Attribute("cn", []string{"sambatest-lockout"})
	a.Attribute("msDS-PasswordSettingsPrecedence", []string{"1"})
	a.Attribute("msDS-PasswordReversibleEncryptionEnabled", []string{"FALSE"})
	a.Attribute("msDS-PasswordHistoryLength", []string{"0"})
	a.Attribute("msDS-PasswordComplexityEnabled", []string{"TRUE"})
	a.Attribute("msDS-MinimumPasswordLength", []string{"7"})
	a.Attribute("msDS-MinimumPasswordAge", []string{"0"})
	a.Attribute("msDS-MaximumPasswordAge", []string{strconv.Itoa(psoMaxPasswordAge)})
	a.Attribute("msDS-LockoutThreshold", []string{strconv.Itoa(LockoutThreshold)})
	a.Attribute("msDS-LockoutObservationWindow", []string{strconv.Itoa(psoObservationWindow)})
	a.Attribute("msDS-LockoutDuration", []string{strconv.Itoa(psoLockoutDuration)})
	a.Attribute("msDS-PSOAppliesTo", []string{LockedDN, LockMeDN})
	if err := c.Add(a); err != nil {
		return fmt.Errorf("add password settings object: %w", err)
	}
	return nil
}

func addUser(c *ldap.Conn, u fixtureUser) error {
	a := ldap.NewAddRequest(userDN(u), nil)
	a.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	a.Attribute("cn", []string{u.cn})
	a.Attribute("sAMAccountName", []string{u.sam})
	upn := u.upn
	if upn == "" {
		upn = u.sam + "@" + DNSDomain
	}
	a.Attribute("userPrincipalName", []string{upn})
	for _, kv := range [][2]string{
		{"givenName", u.givenName}, {"sn", u.sn}, {"displayName", u.display},
		{"mail", u.mail}, {"title", u.title}, {"telephoneNumber", u.phone},
		{"userWorkstations", u.workstations},
	} {
		if kv[1] != "" {
			a.Attribute(kv[0], []string{kv[1]})
		}
	}
	if len(u.proxyAddresses) > 0 {
		a.Attribute("proxyAddresses", u.proxyAddresses)
	}
	if !u.accountExpires.IsZero() {
		a.Attribute("accountExpires", []string{strconv.FormatInt(fileTime(u.accountExpires), 10)})
	}
	if u.denyAllHours {
		a.Attribute("logonHours", []string{string(make([]byte, 21))})
	}
	a.Attribute("unicodePwd", []string{unicodePwd(u.password)})
	// Passwords never expire, so a template reused for months still works.
	// Except for the must-change account: AD ignores pwdLastSet 0 when the
	// password cannot expire.
	uac := uacNormalAccount | uacDontExpirePassword
	if u.mustChange {
		uac = uacNormalAccount
	}
	if u.disabled {
		uac |= uacAccountDisable
	}
	a.Attribute("userAccountControl", []string{strconv.Itoa(uac)})
	if err := c.Add(a); err != nil {
		return err
	}
	if u.mustChange {
		m := ldap.NewModifyRequest(userDN(u), nil)
		m.Replace("pwdLastSet", []string{"0"})
		if err := c.Modify(m); err != nil {
			return fmt.Errorf("set pwdLastSet 0: %w", err)
		}
	}
	return nil
}

// lockAccount binds as dn with a wrong password LockoutThreshold times, then
// checks that the right password is refused with "data 775".
func lockAccount(url string, dial func(string) (*ldap.Conn, error), dn, password string) error {
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < LockoutThreshold; i++ {
		err := c.Bind(dn, "wrong-"+password)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return fmt.Errorf("wrong-password bind %d as %s: want code 49, got %v", i+1, dn, err)
		}
	}
	err = c.Bind(dn, password)
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials || !strings.Contains(le.Error(), "data 775") {
		return fmt.Errorf("after %d wrong binds %s is not locked out: bind with its password gave %v", LockoutThreshold, dn, err)
	}
	return nil
}

func userDN(u fixtureUser) string   { return "CN=" + u.cn + "," + UsersDN }
func groupDN(g fixtureGroup) string { return "CN=" + g.cn + "," + UsersDN }

// unicodePwd encodes a password the way AD's unicodePwd attribute takes it:
// the password in double quotes, UTF-16LE.
func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return string(b)
}

// fileTime is t as a Windows FILETIME (100 ns intervals since 1601-01-01 UTC).
func fileTime(t time.Time) int64 {
	const epochDiff = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	return (t.Unix() + epochDiff) * 10_000_000
}
