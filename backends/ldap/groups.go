package ldap

import (
	"context"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// groupSet collects groups once each, keyed by the normalised DN.
type groupSet struct {
	list []backends.Group
	seen map[string]bool
}

func (gs *groupSet) add(g backends.Group) bool {
	k := normDN(g.DN)
	if gs.seen[k] {
		return false
	}
	gs.seen[k] = true
	gs.list = append(gs.list, g)
	return true
}

// normDN is a comparison key for a DN: parsed and lowercased when it
// parses, lowercased otherwise.
func normDN(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(dn)
	}
	var b strings.Builder
	for i, r := range d.RDNs {
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
	return b.String()
}

// firstRDN returns the value of the first RDN when its type is cn.
func firstRDN(dn string) (string, bool) {
	d, err := goldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
		return "", false
	}
	a := d.RDNs[0].Attributes[0]
	return a.Value, strings.EqualFold(a.Type, "cn")
}

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
		name, err := l.groupName(ctx, dn, nil, search)
		if err != nil {
			return err
		}
		gs.add(backends.Group{DN: dn, Name: name})
	}
	return nil
}

// groupName: the first RDN's value when it is cn, else the entry's
// group_name_attribute (read with one base search when entry is nil), else
// the first RDN's value whatever its type.
func (l *LDAP) groupName(ctx context.Context, dn string, entry *goldap.Entry, search searchFunc) (string, error) {
	rdn, isCN := firstRDN(dn)
	if isCN {
		return rdn, nil
	}
	if entry == nil {
		req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, l.timeLimit(), false,
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
	if rdn != "" {
		return rdn, nil
	}
	return dn, nil
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
		name, err := l.groupName(ctx, ge.DN, ge, search)
		if err != nil {
			return err
		}
		if gs.add(backends.Group{DN: ge.DN, Name: name}) && added != nil {
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
		name, err := l.groupName(ctx, dn, nil, search)
		if err != nil {
			return err
		}
		if gs.add(backends.Group{DN: dn, Name: name}) {
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
