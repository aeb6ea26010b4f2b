package ldap

import (
	"context"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// groupSet collects groups once each, keyed by the normalised DN.
type groupSet struct {
	list []backends.Group
	seen map[string]bool
}

// has reports whether the group with this DN was collected already.
func (gs *groupSet) has(d groupDN) bool { return gs.seen[d.key] }

func (gs *groupSet) add(d groupDN, name string) bool {
	if gs.seen[d.key] {
		return false
	}
	gs.seen[d.key] = true
	gs.list = append(gs.list, backends.Group{DN: d.dn, Name: name})
	return true
}

// groupDN is what one reading of a group's DN tells: the DN, its comparison
// key (types and values lower-cased, as parsed; the lower-cased text when
// it does not parse) and its first RDN's value, with whether that RDN's
// type is cn.
type groupDN struct {
	dn, key, rdn string
	isCN         bool
}

// readGroupDN reads dn once. DNs in the plain form directories write
// (type=value pairs without escapes, quotes, multi-valued RDNs or spaces
// around the separators) are read directly; any other goes to
// goldap.ParseDN, which costs about a microsecond and 26 allocations, and
// a person in AD is often in dozens of groups.
func readGroupDN(dn string) groupDN {
	if d, ok := readPlainDN(dn); ok {
		return d
	}
	d := groupDN{dn: dn}
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		d.key = strings.ToLower(dn)
		return d
	}
	var b strings.Builder
	for i, r := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range r.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(strings.ToLower(a.Value))
		}
	}
	d.key = b.String()
	if len(parsed.RDNs) > 0 && len(parsed.RDNs[0].Attributes) > 0 {
		a := parsed.RDNs[0].Attributes[0]
		d.rdn, d.isCN = a.Value, strings.EqualFold(a.Type, "cn")
	}
	return d
}

// readPlainDN reads a DN made only of type=value RDNs whose type is a
// keyword (a letter, then letters, digits and hyphens) and whose value is
// non-empty, valid UTF-8, free of \ " + # ; < > = , and NUL, and neither
// starts nor ends with a space. What it reads equals ParseDN's reading
// (held to it by a property test); ok is false for anything else.
func readPlainDN(dn string) (groupDN, bool) {
	if dn == "" || !utf8.ValidString(dn) {
		return groupDN{}, false
	}
	d := groupDN{dn: dn}
	for i, rest := 0, dn; ; i++ {
		rdn, more, found := strings.Cut(rest, ",")
		typ, val, ok := strings.Cut(rdn, "=")
		if !ok || !plainType(typ) || !plainValue(val) {
			return groupDN{}, false
		}
		if i == 0 {
			d.rdn, d.isCN = val, strings.EqualFold(typ, "cn")
		}
		if !found {
			break
		}
		rest = more
	}
	d.key = strings.ToLower(dn)
	return d, true
}

func plainType(t string) bool {
	if t == "" || !isASCIILetter(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		if c := t[i]; !isASCIILetter(c) && !('0' <= c && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

func plainValue(v string) bool {
	if v == "" || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\', '"', '+', '#', ';', '<', '>', '=', ',', 0:
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// groups runs every configured lookup and merges the results.
func (l *LDAP) groups(ctx context.Context, e *goldap.Entry, username string, search searchFunc) ([]backends.Group, error) {
	gs := &groupSet{seen: map[string]bool{}}
	for _, g := range l.Groups {
		var err error
		switch g.Method {
		case GroupsMemberOf:
			err = l.memberOf(ctx, e, gs, search)
		case GroupsSearch:
			filter := strings.NewReplacer("{dn}", goldap.EscapeFilter(e.DN), "{username}", goldap.EscapeFilter(username)).Replace(g.Filter)
			err = l.groupSearch(ctx, filter, gs, search, nil)
		case GroupsNested:
			if l.adNested {
				err = l.groupSearch(ctx, strings.ReplaceAll(filterADNested, "{dn}", goldap.EscapeFilter(e.DN)), gs, search, nil)
			} else {
				err = l.traverse(ctx, e, gs, search)
			}
		}
		if err != nil {
			return nil, err
		}
		if backends.Tracing(ctx) {
			backends.Trace(ctx, "ldap", "groups looked up", "method", g.Method, "filter", g.Filter, "groups so far", describeGroups(gs.list))
		}
	}
	return gs.list, nil
}

// describeGroups lists groups for a story line: name and DN of each.
func describeGroups(list []backends.Group) string {
	parts := make([]string, len(list))
	for i, g := range list {
		parts[i] = g.Name + " (" + g.DN + ")"
	}
	return strings.Join(parts, "; ")
}

// memberOf reads the entry's memberOf values; a group whose first RDN is not
// cn is looked up for group_name_attribute.
func (l *LDAP) memberOf(ctx context.Context, e *goldap.Entry, gs *groupSet, search searchFunc) error {
	for _, dn := range e.GetEqualFoldAttributeValues("memberOf") {
		if _, err := l.addDN(ctx, dn, nil, gs, search); err != nil {
			return err
		}
	}
	return nil
}

// groupName: the first RDN's value when it is cn, else the entry's
// group_name_attribute (read with one base search when entry is nil), else
// the first RDN's value whatever its type.
func (l *LDAP) groupName(ctx context.Context, d groupDN, entry *goldap.Entry, search searchFunc) (string, error) {
	if d.isCN {
		return d.rdn, nil
	}
	if entry == nil {
		req := goldap.NewSearchRequest(d.dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, l.timeLimit(), false,
			"(objectClass=*)", []string{l.GroupNameAttribute}, nil)
		res, err := search(ctx, req)
		switch {
		case err == nil && len(res.Entries) == 1:
			entry = res.Entries[0]
		case err != nil && isTransport(err):
			return "", err
		}
	}
	if entry != nil {
		if v := strings.TrimSpace(entry.GetEqualFoldAttributeValue(l.GroupNameAttribute)); v != "" {
			return v, nil
		}
	}
	if d.rdn != "" {
		return d.rdn, nil
	}
	return d.dn, nil
}

// addDN adds the group dn names, unless it was collected already (then
// nothing is looked up); entry is its entry when a search returned it.
func (l *LDAP) addDN(ctx context.Context, dn string, entry *goldap.Entry, gs *groupSet, search searchFunc) (bool, error) {
	d := readGroupDN(dn)
	if gs.has(d) {
		return false, nil
	}
	name, err := l.groupName(ctx, d, entry, search)
	if err != nil {
		return false, err
	}
	return gs.add(d, name), nil
}

// groupSearch adds the groups filter finds under group_base_dn; added, when
// not nil, receives the DNs that were new.
func (l *LDAP) groupSearch(ctx context.Context, filter string, gs *groupSet, search searchFunc, added *[]string) error {
	req := goldap.NewSearchRequest(l.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, l.timeLimit(), false,
		filter, []string{l.GroupNameAttribute}, nil)
	res, err := search(ctx, req)
	if err != nil {
		return err
	}
	for _, ge := range res.Entries {
		isNew, err := l.addDN(ctx, ge.DN, ge, gs, search)
		if err != nil {
			return err
		}
		if isNew && added != nil {
			*added = append(*added, ge.DN)
		}
	}
	return nil
}

// traverse finds transitive memberships on directories without AD's
// matching rule: the direct groups (memberOf and member/uniqueMember), then
// the groups containing those, level by level, up to maxNestedDepth, each
// group visited once (cycles end).
func (l *LDAP) traverse(ctx context.Context, e *goldap.Entry, gs *groupSet, search searchFunc) error {
	var frontier []string
	for _, dn := range e.GetEqualFoldAttributeValues("memberOf") {
		isNew, err := l.addDN(ctx, dn, nil, gs, search)
		if err != nil {
			return err
		}
		if isNew {
			frontier = append(frontier, dn)
		}
	}
	if err := l.groupSearch(ctx, strings.ReplaceAll(filterMemberOfGroup, "{dn}", goldap.EscapeFilter(e.DN)), gs, search, &frontier); err != nil {
		return err
	}
	for depth := 1; depth < maxNestedDepth && len(frontier) > 0; depth++ {
		var next []string
		for start := 0; start < len(frontier); start += 50 {
			end := min(start+50, len(frontier))
			var b strings.Builder
			b.WriteString("(|")
			for _, dn := range frontier[start:end] {
				esc := goldap.EscapeFilter(dn)
				b.WriteString("(member=" + esc + ")(uniqueMember=" + esc + ")")
			}
			b.WriteString(")")
			if err := l.groupSearch(ctx, b.String(), gs, search, &next); err != nil {
				return err
			}
		}
		frontier = next
	}
	return nil
}
