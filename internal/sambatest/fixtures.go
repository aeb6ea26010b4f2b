package sambatest

import "time"

// The domain every Server provisions. The names are fixed (they are baked
// into the cached template), so they are constants as well as Server fields.
const (
	Realm     = "SAMDOM.EXAMPLE.COM"
	DNSDomain = "samdom.example.com" // the UPN suffix
	Domain    = "SAMDOM"             // NetBIOS domain, for DOMAIN\user binds
	BaseDN    = "DC=samdom,DC=example,DC=com"
	UsersDN   = "CN=Users," + BaseDN

	// AdminDN is the domain Administrator: use it only to change the
	// directory from a test (the service account is what a backend binds as).
	AdminDN       = "CN=Administrator," + UsersDN
	AdminPassword = "Adm1n-Passw0rd!"
)

// The service account for searches: an ordinary Domain User (AD lets any
// authenticated user read users, groups, memberOf and proxyAddresses).
const (
	ServiceUser     = "svc-kayako"
	ServicePassword = "Svc-Kayak0-Search!"
	ServiceDN       = "CN=Kayako Service," + UsersDN
)

// jdoe: the main fixture. CN "Jane Doe" differs from the sAMAccountName, as
// it does for every fixture user (samba-tool's and ADUC's default).
// Groups: direct member of helpdesk-users and Tier1; Tier1 is a member of
// helpdesk-staff, so jdoe is in helpdesk-staff only through nesting.
const (
	JDoe               = "jdoe"
	JDoePassword       = "S3cret-Passw0rd"
	JDoeCN             = "Jane Doe"
	JDoeDN             = "CN=" + JDoeCN + "," + UsersDN
	JDoeUPN            = "jdoe@" + DNSDomain
	JDoeGivenName      = "Jane"
	JDoeSN             = "Doe"
	JDoeDisplayName    = "Jane Doe"
	JDoeMail           = "Jane.Doe@Example.com"
	JDoeProxyPrimary   = "SMTP:jane.doe@example.com"
	JDoeProxySecondary = "smtp:jd@example.com"
	JDoeTitle          = "Engineer"
	JDoePhone          = "+1 555 0100"
)

// admin1: member of helpdesk-admins.
const (
	Admin1         = "admin1"
	Admin1Password = "Adm1n-One-Passw0rd"
	Admin1DN       = "CN=Admin One," + UsersDN
	Admin1UPN      = "admin1@" + DNSDomain
)

// rroe: a user whose UPN prefix (richard.roe) differs from the
// sAMAccountName (rroe), and who is the only member of a group whose CN
// ("Helpdesk Agents EU") differs from its sAMAccountName (helpdesk-agents-eu).
const (
	RRoe         = "rroe"
	RRoePassword = "R1chard-Roe-Pass"
	RRoeDN       = "CN=Richard Roe," + UsersDN
	RRoeUPN      = "richard.roe@" + DNSDomain
)

// Accounts whose bind fails with a given AD sub-code (see the package doc).
const (
	// Disabled has userAccountControl ACCOUNTDISABLE: bind → 49 "data 533".
	Disabled         = "disabled1"
	DisabledPassword = "D1sabled-Passw0rd"
	DisabledDN       = "CN=Disabled User," + UsersDN

	// Expired has accountExpires in the past (2020-01-01): bind → 49 "data 701".
	Expired         = "expired1"
	ExpiredPassword = "Exp1red-Passw0rd"
	ExpiredDN       = "CN=Expired User," + UsersDN

	// Locked was locked out when the template was built (LockoutThreshold
	// wrong binds under the lockout PSO, lockout lasting 10 years): any bind,
	// with the right password too → 49 "data 775".
	Locked         = "locked1"
	LockedPassword = "L0cked-Passw0rd"
	LockedDN       = "CN=Locked User," + UsersDN

	// LockMe is under the same lockout PSO but starts unlocked (badPwdCount
	// 0): LockoutThreshold wrong binds lock it, then every bind → "data 775".
	LockMe         = "lockme"
	LockMePassword = "L0ck-Me-Passw0rd"
	LockMeDN       = "CN=Lock Me," + UsersDN

	// MustChange has pwdLastSet 0 ("must change password at next logon"):
	// right password → 49 "data 773" (wrong password → "data 52e").
	MustChange         = "mustchange1"
	MustChangePassword = "Must-Change-Passw0rd"
	MustChangeDN       = "CN=Must Change," + UsersDN

	// NoHours has logonHours with every hour denied: right password →
	// 49 "data 530".
	NoHours         = "nohours1"
	NoHoursPassword = "N0-Hours-Passw0rd"
	NoHoursDN       = "CN=No Hours," + UsersDN

	// Restricted may only log on from workstation NOWHERE (userWorkstations);
	// an LDAP simple bind names no workstation: right password → 49 "data 531".
	Restricted         = "restricted1"
	RestrictedPassword = "Restr1cted-Passw0rd"
	RestrictedDN       = "CN=Restricted User," + UsersDN
)

// Groups (global security groups in CN=Users).
const (
	GroupUsers      = "helpdesk-users"
	GroupUsersDN    = "CN=helpdesk-users," + UsersDN
	GroupTier1      = "Tier1"
	GroupTier1DN    = "CN=Tier1," + UsersDN
	GroupStaff      = "helpdesk-staff" // members: Tier1 (not jdoe directly)
	GroupStaffDN    = "CN=helpdesk-staff," + UsersDN
	GroupAdmins     = "helpdesk-admins"
	GroupAdminsDN   = "CN=helpdesk-admins," + UsersDN
	GroupAgentsEU   = "helpdesk-agents-eu" // sAMAccountName
	GroupAgentsEUCN = "Helpdesk Agents EU"
	GroupAgentsEUDN = "CN=" + GroupAgentsEUCN + "," + UsersDN
)

// Lockout policy.
const (
	// LockoutThreshold is the number of wrong binds that locks Locked and
	// LockMe (a fine-grained password policy applied to those two only).
	LockoutThreshold = 3
	// DomainLockoutThreshold is the domain-wide threshold for every other
	// account. It is high enough never to be reached by a test, and non-zero
	// because Samba only counts wrong binds (badPwdCount, see
	// Server.BadPwdCount) when a threshold is set.
	DomainLockoutThreshold = 1000
)

// PSODN is the fine-grained password policy that applies LockoutThreshold
// to Locked and LockMe.
const PSODN = "CN=sambatest-lockout,CN=Password Settings Container,CN=System," + BaseDN

// userAccountControl flags (MS-ADTS 2.2.16).
const (
	uacAccountDisable     = 0x0002
	uacNormalAccount      = 0x0200
	uacDontExpirePassword = 0x10000
)

type fixtureUser struct {
	sam, cn, password, upn string
	givenName, sn, display string
	mail, title, phone     string
	proxyAddresses         []string
	disabled               bool
	accountExpires         time.Time // zero: never
	mustChange             bool      // pwdLastSet 0
	denyAllHours           bool      // logonHours: 21 zero bytes
	workstations           string    // userWorkstations
}

type fixtureGroup struct {
	cn, sam string
	members []string // DNs; a group must come after the groups it contains
}

// The fixture, in creation order. Changing it changes the template's cache
// key, so a new template is provisioned on the next Start.
var (
	fixtureUsers = []fixtureUser{
		{sam: ServiceUser, cn: "Kayako Service", password: ServicePassword, display: "Kayako LoginShare service"},
		{
			sam: JDoe, cn: JDoeCN, password: JDoePassword, upn: JDoeUPN,
			givenName: JDoeGivenName, sn: JDoeSN, display: JDoeDisplayName,
			mail: JDoeMail, title: JDoeTitle, phone: JDoePhone,
			proxyAddresses: []string{JDoeProxyPrimary, JDoeProxySecondary},
		},
		{sam: Admin1, cn: "Admin One", password: Admin1Password, upn: Admin1UPN, givenName: "Admin", sn: "One", display: "Admin One", mail: "admin1@example.com"},
		{sam: RRoe, cn: "Richard Roe", password: RRoePassword, upn: RRoeUPN, givenName: "Richard", sn: "Roe", display: "Richard Roe", mail: "richard.roe@example.com"},
		{sam: Disabled, cn: "Disabled User", password: DisabledPassword, disabled: true},
		{sam: Expired, cn: "Expired User", password: ExpiredPassword, accountExpires: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{sam: Locked, cn: "Locked User", password: LockedPassword},
		{sam: LockMe, cn: "Lock Me", password: LockMePassword},
		{sam: MustChange, cn: "Must Change", password: MustChangePassword, mustChange: true},
		{sam: NoHours, cn: "No Hours", password: NoHoursPassword, denyAllHours: true},
		{sam: Restricted, cn: "Restricted User", password: RestrictedPassword, workstations: "NOWHERE"},
	}
	fixtureGroups = []fixtureGroup{
		{cn: GroupUsers, sam: GroupUsers, members: []string{JDoeDN}},
		{cn: GroupTier1, sam: GroupTier1, members: []string{JDoeDN}},
		{cn: GroupStaff, sam: GroupStaff, members: []string{GroupTier1DN}},
		{cn: GroupAdmins, sam: GroupAdmins, members: []string{Admin1DN}},
		{cn: GroupAgentsEUCN, sam: GroupAgentsEU, members: []string{RRoeDN}},
	}
)
