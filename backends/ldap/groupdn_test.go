package ldap

import (
	"math/rand/v2"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// parsedReading is readGroupDN's answer computed with goldap.ParseDN alone,
// stated independently: the oracle the plain-DN reader is held to.
func parsedReading(dn string) groupDN {
	d := groupDN{dn: dn}
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		d.key = strings.ToLower(dn)
		return d
	}
	var parts []string
	for _, r := range parsed.RDNs {
		var avas []string
		for _, a := range r.Attributes {
			avas = append(avas, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
		}
		parts = append(parts, strings.Join(avas, "+"))
	}
	d.key = strings.Join(parts, ",")
	if len(parsed.RDNs) > 0 && len(parsed.RDNs[0].Attributes) > 0 {
		d.rdn = parsed.RDNs[0].Attributes[0].Value
		d.isCN = strings.EqualFold(parsed.RDNs[0].Attributes[0].Type, "cn")
	}
	return d
}

func checkGroupDN(t *testing.T, dn string) (plain bool) {
	t.Helper()
	want := parsedReading(dn)
	if got := readGroupDN(dn); got != want {
		t.Fatalf("readGroupDN(%q) = %+v, ParseDN reads %+v", dn, got, want)
	}
	_, plain = readPlainDN(dn)
	return plain
}

func TestReadGroupDNAgreesWithParseDN(t *testing.T) {
	for _, dn := range []string{
		"cn=bench-03,ou=groups,dc=example,dc=org",
		"CN=Domain Users,CN=Users,DC=corp,DC=example,DC=com",
		"CN=Développeurs,OU=Groupes,DC=exemple,DC=fr",
		"ou=staff,dc=example,dc=org",
		"cn=a\\,b,dc=example",
		"cn=\"quoted\",dc=example",
		"cn=x+ou=y,dc=example",
		"cn=#04024869,dc=example",
		"cn = spaced , dc = example",
		" cn=lead,dc=example",
		"cn=trail ,dc=example",
		"cn=,dc=example",
		"=x,dc=example",
		"1.2.3=x,dc=example",
		"cn=a=b,dc=example",
		"cn=x;dc=example",
		"cn=x,,dc=example",
		"cn=x,",
		"",
		"not a dn",
		"cn=\xff,dc=example",
	} {
		checkGroupDN(t, dn)
	}
	// Random strings from the characters that matter to the grammar; the
	// plain reader must take a fair share of them, or it proves nothing.
	pieces := []string{"cn", "CN", "ou", "dc", "uid", "x-y", "1a", "=", ",", " ", "\\", "\\2C", "\"", "+", "#", ";",
		"<", ">", "a", "Z", "9", "é", "-", "group", "Domain Users"}
	nice := []string{"cn", "CN", "ou", "dc", "a", "Z", "9", "é", "-", "group", "Domain Users", "x y"}
	r := rand.New(rand.NewPCG(7, 7))
	plain := 0
	for n := 0; n < 30000; n++ {
		pieces := pieces
		if n%2 == 0 {
			pieces = nice // mostly plain DNs, and the near misses among them
		}
		var b strings.Builder
		for k := r.IntN(3); k >= 0; k-- {
			if k < 2 && b.Len() > 0 {
				b.WriteString(",")
			}
			for m := r.IntN(4); m >= 0; m-- {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
			b.WriteString("=")
			for m := r.IntN(4); m >= 0; m-- {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
		}
		if checkGroupDN(t, b.String()) {
			plain++
		}
	}
	if plain < 1000 {
		t.Errorf("only %d of 30000 generated DNs took the plain path", plain)
	}
}

func FuzzReadGroupDN(f *testing.F) {
	f.Add("cn=bench-03,ou=groups,dc=example,dc=org")
	f.Add("CN=Domain Users,CN=Users,DC=corp,DC=example,DC=com")
	f.Add("cn=a\\,b+ou=x,dc=example")
	f.Fuzz(func(t *testing.T, dn string) { checkGroupDN(t, dn) })
}

func BenchmarkReadGroupDN(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		readGroupDN("CN=Domain Users,CN=Users,DC=corp,DC=example,DC=com")
	}
}
