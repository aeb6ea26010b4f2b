package ldap

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/internal/caddyopts"
)

// TLS configures the client side of LDAPS and StartTLS.
type TLS struct {
	// PEM file with the CA certificates that sign the directory's server
	// certificates. Default: the system roots.
	CAFile string `json:"ca_file,omitempty"`

	// Name expected in the server certificate (and sent as SNI). Default: the
	// host part of each server URL.
	ServerName string `json:"server_name,omitempty"`

	// PEM certificate and key presented to the directory (mutual TLS).
	// Default: none.
	ClientCertFile string `json:"client_cert,omitempty"`
	ClientKeyFile  string `json:"client_key,omitempty"`

	// Accept any server certificate. Never use it in production: anyone on
	// the path can read every password. Logged as a WARN. Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Attributes names the directory attributes the Identity is built from.
// Empty fields take the preset's value, then the default shown.
type Attributes struct {
	// Canonical username. Default: uid (activedirectory: sAMAccountName).
	Username string `json:"username,omitempty"`
	// Default: givenName.
	FirstName string `json:"first_name,omitempty"`
	// Default: sn.
	LastName string `json:"last_name,omitempty"`
	// Default: cn (activedirectory: displayName). Falls back to
	// "first last", then cn, then the username.
	FullName string `json:"full_name,omitempty"`
	// Attributes holding e-mail addresses, all values kept, first attribute's
	// values first, de-duplicated case-insensitively. proxyAddresses keeps
	// smtp:/SMTP: values only, primary (SMTP:) first. Default: [mail]
	// (activedirectory: [mail, proxyAddresses]).
	Email []string `json:"email,omitempty"`
	// Default: telephoneNumber.
	Phone string `json:"phone,omitempty"`
	// Default: mobile.
	Mobile string `json:"mobile,omitempty"`
	// Default: title.
	Designation string `json:"designation,omitempty"`
	// Default: o.
	Organization string `json:"organization,omitempty"`
}

// Group lookup methods.
const (
	GroupsMemberOf = "memberof" // read memberOf from the user entry (0 round trips)
	GroupsSearch   = "search"   // search groups with Filter on the service connection
	GroupsNested   = "nested"   // transitive membership
	GroupsNone     = "none"     // no group lookup
)

// GroupLookup is one source of group memberships; several are merged.
type GroupLookup struct {
	// memberof | search | nested | none.
	Method string `json:"method"`
	// For search: an LDAP filter where {dn} is the user's DN and {username}
	// the canonical username, each escaped exactly once.
	Filter string `json:"filter,omitempty"`
}

// Username transforms.
const (
	TransformNone        = "none"
	TransformStripDomain = "strip_domain"
)

// Presets.
const (
	PresetActiveDirectory = "activedirectory"
	PresetOpenLDAP        = "openldap"
	PresetFreeIPA         = "freeipa"
	PresetLLDAP           = "lldap"
)

// Filters the presets use.
const (
	FilterActiveDirectory = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username}))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
	FilterOpenLDAP        = "(&(objectClass=inetOrgPerson)(uid={username}))"
	GroupFilterOpenLDAP   = "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))(&(objectClass=posixGroup)(memberUid={username})))"
	FilterFreeIPA         = "(&(objectClass=person)(uid={username})(!(nsAccountLock=TRUE)))"
	FilterLLDAP           = "(&(objectClass=person)(uid={username}))"
	// FilterDefault is the user filter without a preset.
	FilterDefault = "(&(objectClass=person)(uid={username}))"

	// filterADNested finds every group the DN belongs to, transitively
	// (LDAP_MATCHING_RULE_IN_CHAIN); other directories answer 0 entries.
	filterADNested = "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))"
	// filterMemberOfGroup finds the groups that list {dn} as a member, for
	// client-side traversal.
	filterMemberOfGroup = "(|(member={dn})(uniqueMember={dn}))"
)

// Defaults of the timing and pool options.
const (
	DefaultDialTimeout        = caddy.Duration(3 * time.Second)
	DefaultRequestTimeout     = caddy.Duration(5 * time.Second)
	DefaultPoolSize           = 8
	DefaultBindPoolSize       = 8
	DefaultPoolAcquireTimeout = caddy.Duration(2 * time.Second)
	DefaultIdleTimeout        = caddy.Duration(5 * time.Minute)
	DefaultServerCooldown     = caddy.Duration(30 * time.Second)
	// maxNestedDepth bounds client-side group traversal.
	maxNestedDepth = 10
	// maxInputBytes bounds username and password before any I/O (the
	// handler's max_field_bytes is usually lower).
	maxInputBytes = 4096
)

// preset is what a known directory needs; applyPreset fills empty options
// from it and explicit options win.
type preset struct {
	userContainer string // prepended to base_dn to make the user base; "" = base_dn
	filter        string
	username      string
	fullName      string
	firstName     string // "" = the generic default
	email         []string
	groups        GroupLookup
	transform     string
}

var presets = map[string]preset{
	PresetActiveDirectory: {filter: FilterActiveDirectory, username: "sAMAccountName", fullName: "displayName",
		email: []string{"mail", "proxyAddresses"}, groups: GroupLookup{Method: GroupsNested}, transform: TransformStripDomain},
	PresetOpenLDAP: {filter: FilterOpenLDAP, username: "uid", fullName: "cn", email: []string{"mail"},
		groups: GroupLookup{Method: GroupsSearch, Filter: GroupFilterOpenLDAP}},
	PresetFreeIPA: {userContainer: "cn=users,cn=accounts,", filter: FilterFreeIPA, username: "uid", fullName: "cn",
		email: []string{"mail"}, groups: GroupLookup{Method: GroupsMemberOf}},
	PresetLLDAP: {userContainer: "ou=people,", filter: FilterLLDAP, username: "uid", fullName: "cn",
		firstName: "givenname", email: []string{"mail"}, groups: GroupLookup{Method: GroupsMemberOf}},
}

// applyPreset fills empty options from the preset, then from the generic
// defaults. Explicit options win.
func (l *LDAP) applyPreset() error {
	if l.Attributes == nil {
		l.Attributes = new(Attributes)
	}
	a := l.Attributes
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	direct := l.BindDNTemplate != ""
	filter := func(f string) {
		if !direct {
			set(&l.UserFilter, f)
		}
	}
	if l.Preset != "" {
		p, ok := presets[l.Preset]
		if !ok {
			return checkPreset(l.Preset)
		}
		if p.userContainer != "" && l.UserBaseDN == "" && l.BaseDN != "" {
			l.UserBaseDN = p.userContainer + l.BaseDN
		}
		filter(p.filter)
		set(&a.Username, p.username)
		set(&a.FullName, p.fullName)
		set(&a.FirstName, p.firstName)
		if len(a.Email) == 0 {
			a.Email = slices.Clone(p.email)
		}
		if len(l.Groups) == 0 {
			l.Groups = []GroupLookup{p.groups}
		}
		set(&l.UsernameTransform, p.transform)
	}

	// Defaults without a preset.
	filter(FilterDefault)
	set(&a.Username, "uid")
	set(&a.FirstName, "givenName")
	set(&a.LastName, "sn")
	set(&a.FullName, "cn")
	if len(a.Email) == 0 {
		a.Email = []string{"mail"}
	}
	set(&a.Phone, "telephoneNumber")
	set(&a.Mobile, "mobile")
	set(&a.Designation, "title")
	set(&a.Organization, "o")
	if len(l.Groups) == 0 {
		l.Groups = []GroupLookup{{Method: GroupsMemberOf}}
	}
	set(&l.GroupNameAttribute, "cn")
	set(&l.UsernameTransform, TransformNone)
	set(&l.UserBaseDN, l.BaseDN)
	set(&l.GroupBaseDN, l.BaseDN)
	def := func(p *caddy.Duration, v caddy.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&l.DialTimeout, DefaultDialTimeout)
	def(&l.RequestTimeout, DefaultRequestTimeout)
	def(&l.PoolAcquireTimeout, DefaultPoolAcquireTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	def(&l.ServerCooldown, DefaultServerCooldown)
	if l.PoolSize == 0 {
		l.PoolSize = DefaultPoolSize
	}
	if l.BindPoolSize == 0 {
		l.BindPoolSize = DefaultBindPoolSize
	}
	return nil
}

// checkServerURL validates one entry of servers.
func checkServerURL(s string, starttls, plaintext bool) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole text, user info included
		}
		return fmt.Errorf("server %q: %v", redactedServer(s), err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("server %q: missing host", redactedServer(s))
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("server %q: only scheme://host[:port] is allowed", redactedServer(s))
	}
	switch u.Scheme {
	case "ldaps":
	case "ldap":
		if !starttls && !plaintext {
			return fmt.Errorf("server %q: ldap:// sends passwords in clear text; use ldaps://, add starttls, or add insecure_plaintext", redactedServer(s))
		}
	default:
		return fmt.Errorf("server %q: scheme must be ldaps or ldap", redactedServer(s))
	}
	return nil
}

// redactedServer is a servers entry as an error may quote it: without
// anything between "://" and an "@" (a user and password someone wrote into
// the URL), which the check then refuses.
func redactedServer(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		i = -3
	}
	rest := s[i+3:]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		return s[:i+3] + "…@" + rest[at+1:]
	}
	return s
}

// checkDN validates a DN-valued option.
func checkDN(name, v string) error {
	if _, err := goldap.ParseDN(v); err != nil {
		return fmt.Errorf("%s %q is not a valid DN: %v", name, v, err)
	}
	return nil
}

// checkFilter compiles f with its placeholders filled in.
func checkFilter(name, f string, need ...string) error {
	found := false
	for _, p := range need {
		if strings.Contains(f, p) {
			found = true
		}
	}
	if len(need) > 0 && !found {
		return fmt.Errorf("%s %q must contain %s", name, f, strings.Join(need, " or "))
	}
	probe := strings.NewReplacer("{username}", "x", "{dn}", "cn=x").Replace(f)
	if _, err := goldap.CompileFilter(probe); err != nil {
		return fmt.Errorf("%s %q: %v", name, f, err)
	}
	return nil
}

// checkUserFilter validates user_filter: it finds the DN, so {dn} cannot be
// in it (it would stay literal and every login would be an unknown user).
func checkUserFilter(f string) error {
	if strings.Contains(f, "{dn}") {
		return fmt.Errorf("user_filter %q: {dn} is only known after this search; use {username}", f)
	}
	return checkFilter("user_filter", f, "{username}")
}

// checkTemplate validates bind_dn_template.
func checkTemplate(t string) error {
	if !strings.Contains(t, "{username}") {
		return fmt.Errorf("bind_dn_template %q must contain {username}", t)
	}
	return checkDN("bind_dn_template", strings.ReplaceAll(t, "{username}", "x"))
}

// checkGroupLookup validates one groups entry.
func checkGroupLookup(g GroupLookup) error {
	switch g.Method {
	case GroupsMemberOf, GroupsNested, GroupsNone:
		if g.Filter != "" {
			return fmt.Errorf("groups %s takes no filter", g.Method)
		}
	case GroupsSearch:
		return checkFilter("groups search filter", g.Filter, "{dn}", "{username}")
	default:
		return fmt.Errorf("groups %q: want memberof, search \"<filter>\", nested or none", g.Method)
	}
	return nil
}

// checkPreset is the rule for preset, in the Caddyfile and in JSON.
func checkPreset(v string) error {
	if _, ok := presets[v]; ok {
		return nil
	}
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return caddyopts.OneOf("preset", v, names...)
}

// checkTransform is the rule for username_transform.
func checkTransform(v string) error {
	return caddyopts.OneOf("username_transform", v, TransformNone, TransformStripDomain)
}
