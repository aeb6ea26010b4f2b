package caddymodule

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// compiledMapping is a Mapping with DN keys parsed once at provision.
type compiledMapping struct {
	lines []compiledLine
	def   string
}

type compiledLine struct {
	key   string   // as written, for stories
	dn    *ldap.DN // set when the key is a DN
	name  string   // otherwise the group name
	title string
}

func (m *compiledMapping) empty() bool { return len(m.lines) == 0 && m.def == "" }

// compileMapping returns nil for a nil Mapping (the option was omitted).
func compileMapping(m *Mapping) (*compiledMapping, error) {
	if m == nil {
		return nil, nil
	}
	c := &compiledMapping{def: strings.TrimSpace(m.Default)}
	if err := checkNoPercent("default title", c.def); err != nil {
		return nil, err
	}
	for i, l := range m.Map {
		line, err := compileLine(l.Group, l.Title)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		c.lines = append(c.lines, line)
	}
	return c, nil
}

func compileLine(group, title string) (compiledLine, error) {
	group, title = strings.TrimSpace(group), strings.TrimSpace(title)
	if group == "" || title == "" {
		return compiledLine{}, errors.New("group and title must not be empty")
	}
	if err := checkNoPercent("title", title); err != nil {
		return compiledLine{}, err
	}
	line := compiledLine{key: group, title: title}
	if isDNKey(group) {
		dn, err := ldap.ParseDN(group)
		if err != nil {
			return compiledLine{}, fmt.Errorf("group %q is not a valid DN: %v", group, err)
		}
		line.dn = dn
	} else {
		line.name = group
	}
	return line, nil
}

// isDNKey: a key containing "=" is a DN, anything else a group name.
func isDNKey(key string) bool { return strings.Contains(key, "=") }

// title walks the mapping lines in order and returns the first line's title
// that any of the groups satisfies, else the default; ok is false when the
// person must be refused.
func (m *compiledMapping) title(groups []backends.Group) (string, bool) {
	t, _, ok := m.match(groups)
	return t, ok
}

// match is title that also says which line decided: its index, or -1 for
// the default (and for a refusal).
func (m *compiledMapping) match(groups []backends.Group) (string, int, bool) {
	if m == nil {
		return "", -1, false
	}
	var parsed []*ldap.DN // parsed lazily, once per request
	for li, l := range m.lines {
		for i, g := range groups {
			if l.dn == nil {
				if g.Name != "" && strings.EqualFold(g.Name, l.name) {
					return l.title, li, true
				}
				continue
			}
			if g.DN == "" {
				continue
			}
			if parsed == nil {
				parsed = make([]*ldap.DN, len(groups))
				for j, gg := range groups {
					if gg.DN != "" {
						parsed[j], _ = ldap.ParseDN(gg.DN)
					}
				}
			}
			if parsed[i] != nil && parsed[i].EqualFold(l.dn) {
				return l.title, li, true
			}
		}
	}
	if m.def != "" {
		return m.def, -1, true
	}
	return "", -1, false
}

// acceptsAnyone reports whether some person could pass this mapping: an
// omitted user_groups (nil) lets everyone in as Registered, an empty block
// nobody.
func (m *compiledMapping) acceptsAnyone() bool { return m == nil || !m.empty() }

// usesGroups reports whether any group could change this mapping's answer.
func (m *compiledMapping) usesGroups() bool { return m != nil && len(m.lines) > 0 }
