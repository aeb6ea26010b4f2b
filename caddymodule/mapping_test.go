package caddymodule

import (
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

func TestMappingWalksLinesInOrderAndComparesDNsAsDNs(t *testing.T) {
	m, err := compileMapping(&Mapping{
		Map: []MappingLine{
			{Group: "CN=Helpdesk Admins,OU=Groups,DC=corp,DC=example", Title: "Administrator"},
			{Group: "helpdesk-staff", Title: "Support"},
			{Group: "cn=Second Line, ou=Groups, dc=corp, dc=example", Title: "Second Line"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		groups []backends.Group
		want   string
		ok     bool
	}{
		{"DN differing in case and spacing", []backends.Group{{DN: "cn=helpdesk admins, ou=groups,dc=CORP,dc=example", Name: "x"}}, "Administrator", true},
		{"name case-insensitive", []backends.Group{{Name: "HelpDesk-Staff"}}, "Support", true},
		{"first line wins whatever the group order", []backends.Group{
			{Name: "helpdesk-staff"}, {DN: "CN=Helpdesk Admins,OU=Groups,DC=corp,DC=example"}}, "Administrator", true},
		{"DN key never matches a name", []backends.Group{{Name: "Helpdesk Admins"}}, "", false},
		{"name key never matches a DN", []backends.Group{{DN: "cn=helpdesk-staff,dc=example"}}, "", false},
		{"unparsable group DN is skipped", []backends.Group{{DN: "not a dn"}, {DN: "CN=Second Line,OU=Groups,DC=corp,DC=example"}}, "Second Line", true},
		{"no groups", nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := m.title(tc.groups)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMappingDefaultAndAbsence(t *testing.T) {
	var absent *compiledMapping
	if _, ok := absent.title([]backends.Group{{Name: "x"}}); ok {
		t.Error("an absent mapping accepted someone")
	}
	m, err := compileMapping(&Mapping{Default: "Guests"})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m.title(nil); !ok || got != "Guests" {
		t.Errorf("default: %q %v", got, ok)
	}
	if _, err := compileMapping(&Mapping{Map: []MappingLine{{Group: "a", Title: ""}}}); err == nil {
		t.Error("empty title accepted")
	}
}

func TestAllowFromEntriesAreComparedUnmapped(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3":            "10.1.2.3/32",
		"::ffff:10.1.2.3":     "10.1.2.3/32",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"192.168.7.9/16":      "192.168.0.0/16",
		"2001:db8::1":         "2001:db8::1/128",
		"2001:db8::/32":       "2001:db8::/32",
	} {
		p, err := parsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("%s: %v %v, want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "host.example", "", "10.0.0.0/"} {
		if _, err := parsePrefix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
