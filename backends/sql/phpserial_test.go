package sql

import (
	"reflect"
	"strings"
	"testing"
)

func TestWordPressRolesFromCapabilities(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{`a:1:{s:10:"subscriber";b:1;}`, []string{"subscriber"}, false},
		{`a:2:{s:13:"administrator";b:1;s:6:"editor";b:0;}`, []string{"administrator"}, false},
		{`a:0:{}`, nil, false},
		{`a:2:{s:6:"editor";i:1;s:6:"author";s:1:"1";}`, []string{"editor", "author"}, false},
		{`a:1:{i:0;b:1;}`, nil, false}, // integer keys are no role names
		// Lengths are bytes: a role with UTF-8, quotes and separators in it.
		{wpCaps(`rôle";x`, "1"), []string{`rôle";x`}, false},
		{wpCaps(`x";b:1;s:3:"adm`, "0"), nil, false}, // one key; a regex would find "x" and "adm"
		{`N;`, nil, false},
		{`s:10:"subscriber";`, nil, false}, // serialized, not an array: no roles
		{`subscriber`, []string{"subscriber"}, false},
		{`a:1:{s:10:"subscriber";b:1;`, nil, true},
		{`a:2:{s:10:"subscriber";b:1;}`, nil, true},
		{`a:1:{s:11:"subscriber";b:1;}`, nil, true},
		{`a:1:{s:10:"subscriber";b:2;}`, nil, true},
		{`a:1:{O:8:"stdClass":0:{}b:1;}`, nil, true},
		{`a:99999999:{}`, nil, true},
		{`a:1:{s:-1:"";b:1;}`, nil, true},
	} {
		got, err := wordpressRoles(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%s: err %v, want error %v", c.in, err, c.bad)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPHPSerializedScalars(t *testing.T) {
	for in, want := range map[string]phpValue{
		`i:-42;`:                  {kind: phpInt, i: -42},
		`d:0.5;`:                  {kind: phpFloat, f: 0.5},
		`b:0;`:                    {kind: phpBool},
		`s:0:"";`:                 {kind: phpString},
		`s:3:"a;}";`:              {kind: phpString, s: "a;}"},
		`s:2:"` + "\x00\"" + `";`: {kind: phpString, s: "\x00\""},
	} {
		got, err := parsePHPSerialized(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	deep := strings.Repeat("a:1:{i:0;", 40) + "N;" + strings.Repeat("}", 40)
	if _, err := parsePHPSerialized(deep); err == nil {
		t.Error("40 levels of nesting parsed")
	}
}

// phpSerialize writes v back in PHP's format (for the round trip).
func phpSerialize(b *strings.Builder, v phpValue) {
	switch v.kind {
	case phpNull:
		b.WriteString("N;")
	case phpBool:
		if v.b {
			b.WriteString("b:1;")
		} else {
			b.WriteString("b:0;")
		}
	case phpInt:
		b.WriteString("i:" + itoa64Signed(v.i) + ";")
	case phpFloat:
		b.WriteString("d:0;") // floats are not round-tripped exactly
	case phpString:
		b.WriteString("s:" + itoaInt(len(v.s)) + `:"` + v.s + `";`)
	case phpArray:
		b.WriteString("a:" + itoaInt(len(v.elems)) + ":{")
		for _, e := range v.elems {
			phpSerialize(b, e.key)
			phpSerialize(b, e.val)
		}
		b.WriteString("}")
	}
}

func itoa64Signed(n int64) string {
	if n < 0 {
		if n == -n { // MinInt64
			return "-9223372036854775808"
		}
		return "-" + itoaInt(int(-n))
	}
	return itoaInt(int(n))
}

func hasFloat(v phpValue) bool {
	if v.kind == phpFloat {
		return true
	}
	for _, e := range v.elems {
		if hasFloat(e.key) || hasFloat(e.val) {
			return true
		}
	}
	return false
}

// FuzzPHPSerialized: no input panics or loops, and whatever parses writes
// back to a value that parses to the same thing.
func FuzzPHPSerialized(f *testing.F) {
	for _, s := range []string{
		`a:1:{s:10:"subscriber";b:1;}`, `a:2:{s:13:"administrator";b:1;s:6:"editor";b:0;}`,
		`a:1:{i:0;a:1:{s:1:"x";N;}}`, `s:5:"a";b:";`, `d:1.5e3;`, `i:-7;`, `N;`, `a:3:{`, `s:99:"x";`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := parsePHPSerialized(in)
		_, _ = wordpressRoles(in)
		if err != nil || hasFloat(v) {
			return
		}
		var b strings.Builder
		phpSerialize(&b, v)
		again, err := parsePHPSerialized(b.String())
		if err != nil {
			t.Fatalf("%q parsed, its rewrite %q does not: %v", in, b.String(), err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(again)) {
			t.Fatalf("%q: %+v, rewritten %+v", in, v, again)
		}
	})
}

// normalize makes empty and nil element lists equal.
func normalize(v phpValue) phpValue {
	if len(v.elems) == 0 {
		v.elems = nil
	}
	for i := range v.elems {
		v.elems[i].key = normalize(v.elems[i].key)
		v.elems[i].val = normalize(v.elems[i].val)
	}
	return v
}
