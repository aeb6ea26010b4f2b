package ldap

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// Authenticate finds the person, binds as them exactly once and reads their
// groups. Servers are tried in order, moving on only after transport
// failures that happened before the user's bind request was sent.
func (l *LDAP) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	if err := checkInput(c); err != nil {
		return backends.Identity{}, err
	}
	if l.set == nil {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "ldap backend not provisioned")
	}
	if l.noPassword {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "bind_password is empty: not binding as %q", l.BindDN)
	}
	if until := l.set.svcRejected.Load(); until != 0 && time.Now().UnixNano() < until {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "the directory rejected the service account %q recently; not retrying before server_cooldown", l.BindDN)
	}
	username := l.transform(c.Username)
	if username == "" {
		return backends.Identity{}, backends.Errorf(backends.UnknownUser, "empty username after %s", l.UsernameTransform)
	}

	var lastErr error
	for _, s := range l.set.order() {
		if ctx.Err() != nil {
			break
		}
		id, err := l.authOn(ctx, s, username, c.Password)
		if err == nil {
			s.markOK()
			id.Server = s.url
			return id, nil
		}
		if !failsOver(err) {
			var be *backends.Error
			if errors.As(err, &be) {
				return backends.Identity{}, be
			}
			return backends.Identity{}, backends.Errorf(backends.Unavailable, "%s: %w", s.url, err)
		}
		lastErr = err
		if ctx.Err() != nil {
			break // our own deadline, not the server's fault
		}
		if s.markFailed() {
			l.logger.Warn("LDAP server failed; trying the next one", zap.String("server", s.url), zap.String("reason", describe(err)))
		} else if ce := l.logger.Check(zapcore.DebugLevel, "LDAP server still failing"); ce != nil {
			ce.Write(zap.String("server", s.url), zap.String("reason", describe(err)))
		}
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	if lastErr == nil {
		lastErr = errors.New("no server tried")
	}
	return backends.Identity{}, backends.Errorf(backends.Unavailable, "no LDAP server answered: %w", lastErr)
}

func itoa(n int) string { return strconv.Itoa(n) }

// secretAttribute names attributes a story never shows, even when a
// misconfigured attribute list asks for them.
func secretAttribute(name string) bool {
	switch strings.ToLower(name) {
	case "userpassword", "unicodepwd", "sambantpassword", "sambalmpassword", "authpassword":
		return true
	}
	return false
}

// checkInput rejects what must never reach the directory.
func checkInput(c backends.Credentials) error {
	switch {
	case strings.TrimSpace(c.Password) == "":
		return backends.Errorf(backends.InvalidCredentials, "empty or whitespace-only password")
	case len(c.Username) > maxInputBytes || len(c.Password) > maxInputBytes:
		return backends.Errorf(backends.InvalidCredentials, "username or password too long")
	case strings.ContainsRune(c.Username, 0) || strings.ContainsRune(c.Password, 0):
		return backends.Errorf(backends.InvalidCredentials, "NUL in username or password")
	case !utf8.ValidString(c.Username) || !utf8.ValidString(c.Password):
		return backends.Errorf(backends.InvalidCredentials, "username or password is not UTF-8")
	case strings.TrimSpace(c.Username) == "":
		return backends.Errorf(backends.UnknownUser, "empty username")
	}
	return nil
}

// transform applies username_transform: strip_domain turns DOMAIN\user into
// user and leaves user@realm to the filter.
func (l *LDAP) transform(u string) string {
	u = strings.TrimSpace(u)
	if l.UsernameTransform == TransformStripDomain {
		if i := strings.LastIndexByte(u, '\\'); i >= 0 {
			u = u[i+1:]
		}
	}
	return u
}

// searchFunc runs a search on some connection to one server.
type searchFunc func(context.Context, *goldap.SearchRequest) (*goldap.SearchResult, error)

// authOn runs one login against one server.
func (l *LDAP) authOn(ctx context.Context, s *server, username, password string) (backends.Identity, error) {
	if l.BindDNTemplate != "" {
		return l.directBind(ctx, s, username, password)
	}
	filter := strings.ReplaceAll(l.UserFilter, "{username}", goldap.EscapeFilter(username))
	req := goldap.NewSearchRequest(l.UserBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, l.timeLimit(), false, filter, l.userAttributes(ctx), nil)
	res, err := s.searchPooled(ctx, req)
	if err != nil {
		backends.Trace(ctx, "ldap", "user search failed", "server", s.url, "base_dn", l.UserBaseDN, "filter", filter, "error", describe(err))
		return backends.Identity{}, l.searchError(err, s, filter)
	}
	if backends.Tracing(ctx) {
		backends.Trace(ctx, "ldap", "user search", "server", s.url, "base_dn", l.UserBaseDN, "filter", filter, "entries", itoa(len(res.Entries)))
	}
	switch n := len(res.Entries); {
	case n == 0:
		return backends.Identity{}, backends.Errorf(backends.UnknownUser, "no entry matches %s under %q on %s", filter, l.UserBaseDN, s.url)
	case n > 1:
		l.logger.Error("user_filter matched more than one entry; fix the filter (refusing the login)",
			zap.String("server", s.url), zap.String("filter", filter), zap.String("base_dn", l.UserBaseDN),
			zap.Strings("dns", []string{res.Entries[0].DN, res.Entries[1].DN}))
		return backends.Identity{}, backends.Errorf(backends.AmbiguousUser, "filter %s matched %d entries on %s", filter, n, s.url)
	}
	entry := res.Entries[0]
	if ce := l.logger.Check(zapcore.DebugLevel, "LDAP user found"); ce != nil {
		ce.Write(zap.String("server", s.url), zap.String("dn", entry.DN))
	}
	// The account is known: the handler's throttle counts this attempt under
	// the account itself, whatever spelling found it, and may stop it before
	// any bind (so a banned account's lockout counter never moves).
	backends.Trace(ctx, "ldap", "user entry found", "server", s.url, "dn", entry.DN)
	if err := backends.Gate(ctx, l.canonicalName(entry)); err != nil {
		return backends.Identity{}, err
	}

	bc, err := s.bindUser(ctx, entry.DN, password)
	if err != nil {
		if failsOver(err) {
			backends.Trace(ctx, "ldap", "bind not sent (transport)", "server", s.url, "error", describe(err))
			return backends.Identity{}, err // nothing was sent: the next server may answer
		}
		cerr := classifyBind(err, entry.DN, s.url)
		backends.Trace(ctx, "ldap", "user bind refused", "server", s.url, "dn", entry.DN, "class", string(backends.ClassOf(cerr)), "reason", describe(err))
		return backends.Identity{}, cerr
	}
	backends.Trace(ctx, "ldap", "user bind succeeded", "server", s.url, "dn", entry.DN)
	s.bind.put(bc, true)
	if ce := l.logger.Check(zapcore.DebugLevel, "LDAP user bind succeeded"); ce != nil {
		ce.Write(zap.String("server", s.url), zap.String("dn", entry.DN))
	}
	return l.identity(ctx, s, entry, username, s.searchPooled)
}

// userAttributes is what this login reads of the user's entry.
func (l *LDAP) userAttributes(ctx context.Context) []string {
	if backends.NeedGroups(ctx) {
		return l.attrs
	}
	return l.attrsNoGroups
}

// canonicalName is the account's name for the throttle: its username
// attribute, or the DN when the entry lacks one (identity refuses that entry
// later, after the bind).
func (l *LDAP) canonicalName(e *goldap.Entry) string {
	if l.Attributes.Username != "" {
		if v := strings.TrimSpace(e.GetEqualFoldAttributeValue(l.Attributes.Username)); v != "" {
			return v
		}
	}
	return e.DN
}

// directBind is the mode without a service account: bind as the DN built
// from bind_dn_template, then read the entry on that same connection.
func (l *LDAP) directBind(ctx context.Context, s *server, username, password string) (backends.Identity, error) {
	dn := strings.ReplaceAll(l.BindDNTemplate, "{username}", goldap.EscapeDN(username))
	bc, err := s.bindUser(ctx, dn, password)
	if err != nil {
		if failsOver(err) {
			backends.Trace(ctx, "ldap", "bind not sent (transport)", "server", s.url, "error", describe(err))
			return backends.Identity{}, err
		}
		cerr := classifyBind(err, dn, s.url)
		backends.Trace(ctx, "ldap", "direct bind refused", "server", s.url, "dn", dn, "class", string(backends.ClassOf(cerr)), "reason", describe(err))
		return backends.Identity{}, cerr
	}
	backends.Trace(ctx, "ldap", "direct bind succeeded", "server", s.url, "dn", dn)
	healthy := true
	defer func() { s.bind.put(bc, healthy) }()
	search := func(ctx context.Context, req *goldap.SearchRequest) (*goldap.SearchResult, error) {
		res, err := bc.search(ctx, req)
		if !bc.usable(err) {
			healthy = false
		}
		return res, err
	}
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		2, l.timeLimit(), false, "(objectClass=*)", l.userAttributes(ctx), nil)
	res, err := search(ctx, req)
	if err != nil {
		return backends.Identity{}, l.afterBind(l.searchError(err, s, "(objectClass=*)"))
	}
	if len(res.Entries) != 1 {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "bound as %q on %s but cannot read the entry", dn, s.url)
	}
	return l.identity(ctx, s, res.Entries[0], username, search)
}

// afterBind: once the user's bind was sent, nothing may fail over (the next
// server would bind again).
func (l *LDAP) afterBind(err error) error {
	var be *backends.Error
	if errors.As(err, &be) {
		return be
	}
	return backends.Errorf(backends.Unavailable, "after the user bind: %w", err)
}

// searchError classifies a failed user search.
func (l *LDAP) searchError(err error, s *server, filter string) error {
	if isTransport(err) {
		return err
	}
	var se *serviceError
	if errors.As(err, &se) {
		l.logger.Error("the directory rejected the service account; logins answer unavailable",
			zap.String("server", s.url), zap.String("bind_dn", l.BindDN), zap.String("reason", describe(err)))
		return backends.Errorf(backends.Unavailable, "%s: %w", s.url, err)
	}
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		l.logger.Error("user_filter matched more than one entry; fix the filter (refusing the login)",
			zap.String("server", s.url), zap.String("filter", filter), zap.String("base_dn", l.UserBaseDN))
		return backends.Errorf(backends.AmbiguousUser, "filter %s exceeded the size limit on %s", filter, s.url)
	}
	if errors.Is(err, errAcquireTimeout) || errors.Is(err, errPoolClosed) {
		return backends.Errorf(backends.Unavailable, "%s: %w", s.url, err)
	}
	l.logger.Error("LDAP search failed", zap.String("server", s.url), zap.String("filter", filter), zap.String("reason", describe(err)))
	return backends.Errorf(backends.Unavailable, "search on %s: %w", s.url, err)
}

// timeLimit is the server-side time limit of a search, in seconds.
func (l *LDAP) timeLimit() int {
	sec := int((time.Duration(l.RequestTimeout) + time.Second - 1) / time.Second)
	if sec < 1 {
		sec = 1
	}
	return sec
}

// identity builds the Identity from the entry and the groups. Every error
// here comes after the user's bind and is final for this login.
func (l *LDAP) identity(ctx context.Context, s *server, e *goldap.Entry, typed string, search searchFunc) (backends.Identity, error) {
	a := l.Attributes
	get := func(attr string) string {
		if attr == "" {
			return ""
		}
		return strings.TrimSpace(e.GetEqualFoldAttributeValue(attr))
	}
	if backends.Tracing(ctx) {
		kv := []string{"server", s.url, "dn", e.DN}
		for _, at := range e.Attributes {
			if secretAttribute(at.Name) {
				continue
			}
			kv = append(kv, at.Name, strings.Join(at.Values, " | "))
		}
		backends.Trace(ctx, "ldap", "attributes read", kv...)
	}
	id := backends.Identity{
		Username:     get(a.Username),
		FirstName:    get(a.FirstName),
		LastName:     get(a.LastName),
		FullName:     get(a.FullName),
		Phone:        get(a.Phone),
		Mobile:       get(a.Mobile),
		Designation:  get(a.Designation),
		Organization: get(a.Organization),
		Emails:       emails(e, a.Email),
	}
	if id.Username == "" {
		// Never fall back to the typed name: Kayako links staff by it, so
		// every spelling would become its own account.
		l.logger.Error("LDAP entry has no username attribute; check attributes.username and the service account's read rights",
			zap.String("server", s.url), zap.String("dn", e.DN), zap.String("attribute", a.Username))
		return backends.Identity{}, l.afterBind(backends.Errorf(backends.Unavailable, "entry %q has no %s attribute", e.DN, a.Username))
	}
	if id.FullName == "" {
		id.FullName = strings.TrimSpace(id.FirstName + " " + id.LastName)
	}
	if id.FullName == "" {
		id.FullName = get("cn")
	}
	if id.FullName == "" {
		id.FullName = id.Username
	}
	if !backends.NeedGroups(ctx) {
		backends.Trace(ctx, "ldap", "groups not looked up: the mapping has no group lines")
		// The mapping has no group lines: a lookup could not change the answer.
		if ce := l.logger.Check(zapcore.DebugLevel, "LDAP identity (groups not needed by the mapping)"); ce != nil {
			ce.Write(zap.String("server", s.url), zap.String("dn", e.DN), zap.String("username", id.Username))
		}
		return id, nil
	}
	groups, err := l.groups(ctx, e, id.Username, search)
	if err != nil {
		if ctx.Err() == nil {
			l.logger.Error("LDAP group lookup failed", zap.String("server", s.url), zap.String("dn", e.DN), zap.String("reason", describe(err)))
		}
		return backends.Identity{}, l.afterBind(backends.Errorf(backends.Unavailable, "groups of %q on %s: %w", e.DN, s.url, err))
	}
	id.Groups = groups
	if ce := l.logger.Check(zapcore.DebugLevel, "LDAP identity"); ce != nil {
		names := make([]string, len(groups))
		for i, g := range groups {
			names[i] = g.Name
		}
		ce.Write(zap.String("server", s.url), zap.String("dn", e.DN), zap.String("username", id.Username), zap.Strings("groups", names))
	}
	return id, nil
}

// emails collects every value of the e-mail attributes in order, keeping only
// smtp:/SMTP: proxyAddresses (primary SMTP: first), de-duplicated
// case-insensitively.
func emails(e *goldap.Entry, attrs []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(v string) {
		v = strings.TrimSpace(v)
		k := strings.ToLower(v)
		if v != "" && !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	for _, attr := range attrs {
		vals := e.GetEqualFoldAttributeValues(attr)
		if !strings.EqualFold(attr, "proxyAddresses") {
			for _, v := range vals {
				add(v)
			}
			continue
		}
		for _, v := range vals {
			if strings.HasPrefix(v, "SMTP:") {
				add(v[5:])
			}
		}
		for _, v := range vals {
			if len(v) > 5 && strings.EqualFold(v[:5], "smtp:") && !strings.HasPrefix(v, "SMTP:") {
				add(v[5:])
			}
		}
	}
	return out
}
