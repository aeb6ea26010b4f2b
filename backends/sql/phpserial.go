package sql

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// A reader of PHP's serialize() format, as far as WordPress user meta needs
// it: N; b:0|1; i:n; d:x; s:len:"bytes"; and a:n:{key value …}. Objects
// (O:, C:) and references (r:, R:) are refused: WordPress capabilities
// never hold them, and nothing here should build what PHP would
// instantiate. Strings are length-prefixed in bytes, so a value may hold
// quotes, semicolons, braces or NUL without ending early; the length is the
// only thing that says where a string ends.

type phpKind int

const (
	phpNull phpKind = iota
	phpBool
	phpInt
	phpFloat
	phpString
	phpArray
)

type phpValue struct {
	kind  phpKind
	b     bool
	i     int64
	f     float64
	s     string
	elems []phpEntry // phpArray, in order
}

type phpEntry struct {
	key phpValue // phpInt or phpString
	val phpValue
}

// truthy is PHP's boolean conversion.
func (v phpValue) truthy() bool {
	switch v.kind {
	case phpBool:
		return v.b
	case phpInt:
		return v.i != 0
	case phpFloat:
		return v.f != 0
	case phpString:
		return v.s != "" && v.s != "0"
	case phpArray:
		return len(v.elems) > 0
	}
	return false
}

const phpMaxDepth = 32

var errPHPSerial = errors.New("not a PHP-serialized value")

// parsePHPSerialized reads exactly one serialized value filling all of s.
func parsePHPSerialized(s string) (phpValue, error) {
	p := phpParser{s: s}
	v, err := p.value(0)
	if err != nil {
		return phpValue{}, err
	}
	if p.i != len(s) {
		return phpValue{}, p.fail("text after the value")
	}
	return v, nil
}

type phpParser struct {
	s string
	i int
}

func (p *phpParser) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errPHPSerial, what, p.i)
}

func (p *phpParser) expect(c byte) error {
	if p.i >= len(p.s) || p.s[p.i] != c {
		return p.fail(fmt.Sprintf("expected %q", c))
	}
	p.i++
	return nil
}

// until returns the text up to the next c and consumes c.
func (p *phpParser) until(c byte) (string, error) {
	for j := p.i; j < len(p.s); j++ {
		if p.s[j] == c {
			t := p.s[p.i:j]
			p.i = j + 1
			return t, nil
		}
	}
	return "", p.fail(fmt.Sprintf("no %q", c))
}

// integer reads PHP's serialized integer text: an optional sign and digits.
func phpInteger(t string) (int64, bool) {
	d := t
	if d != "" && (d[0] == '-' || d[0] == '+') {
		d = d[1:]
	}
	if d == "" {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	return n, err == nil
}

func (p *phpParser) value(depth int) (phpValue, error) {
	if depth > phpMaxDepth {
		return phpValue{}, p.fail("nested too deeply")
	}
	if p.i+1 >= len(p.s) {
		return phpValue{}, p.fail("truncated")
	}
	tag := p.s[p.i]
	if tag == 'N' {
		p.i++
		if err := p.expect(';'); err != nil {
			return phpValue{}, err
		}
		return phpValue{kind: phpNull}, nil
	}
	p.i++
	if err := p.expect(':'); err != nil {
		return phpValue{}, err
	}
	switch tag {
	case 'b':
		t, err := p.until(';')
		if err != nil {
			return phpValue{}, err
		}
		if t != "0" && t != "1" {
			return phpValue{}, p.fail("boolean is neither 0 nor 1")
		}
		return phpValue{kind: phpBool, b: t == "1"}, nil
	case 'i':
		t, err := p.until(';')
		if err != nil {
			return phpValue{}, err
		}
		n, ok := phpInteger(t)
		if !ok {
			return phpValue{}, p.fail("bad integer")
		}
		return phpValue{kind: phpInt, i: n}, nil
	case 'd':
		t, err := p.until(';')
		if err != nil {
			return phpValue{}, err
		}
		var f float64
		switch t {
		case "INF":
			f = math.Inf(1)
		case "-INF":
			f = math.Inf(-1)
		case "NAN":
			f = math.NaN()
		default:
			if t == "" || !isFloatText(t) {
				return phpValue{}, p.fail("bad float")
			}
			if f, err = strconv.ParseFloat(t, 64); err != nil {
				var ne *strconv.NumError
				if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
					return phpValue{}, p.fail("bad float")
				}
			}
		}
		return phpValue{kind: phpFloat, f: f}, nil
	case 's':
		t, err := p.until(':')
		if err != nil {
			return phpValue{}, err
		}
		n, ok := phpInteger(t)
		if !ok || n < 0 || t[0] == '+' || t[0] == '-' {
			return phpValue{}, p.fail("bad string length")
		}
		if err := p.expect('"'); err != nil {
			return phpValue{}, err
		}
		if n > int64(len(p.s)-p.i) {
			return phpValue{}, p.fail("string longer than the value")
		}
		str := p.s[p.i : p.i+int(n)]
		p.i += int(n)
		if err := p.expect('"'); err != nil {
			return phpValue{}, err
		}
		if err := p.expect(';'); err != nil {
			return phpValue{}, err
		}
		return phpValue{kind: phpString, s: str}, nil
	case 'a':
		t, err := p.until(':')
		if err != nil {
			return phpValue{}, err
		}
		n, ok := phpInteger(t)
		if !ok || n < 0 || t[0] == '+' || t[0] == '-' {
			return phpValue{}, p.fail("bad array size")
		}
		if err := p.expect('{'); err != nil {
			return phpValue{}, err
		}
		// Every entry takes at least 4 bytes ("i:0;N;" is 6): a size the
		// rest of the text cannot hold is refused before allocating.
		if n > int64(len(p.s)-p.i)/4 {
			return phpValue{}, p.fail("array size larger than the value")
		}
		v := phpValue{kind: phpArray, elems: make([]phpEntry, 0, n)}
		for k := int64(0); k < n; k++ {
			key, err := p.value(depth + 1)
			if err != nil {
				return phpValue{}, err
			}
			if key.kind != phpInt && key.kind != phpString {
				return phpValue{}, p.fail("array key is neither integer nor string")
			}
			val, err := p.value(depth + 1)
			if err != nil {
				return phpValue{}, err
			}
			v.elems = append(v.elems, phpEntry{key, val})
		}
		if err := p.expect('}'); err != nil {
			return phpValue{}, err
		}
		return v, nil
	}
	p.i -= 2
	return phpValue{}, p.fail(fmt.Sprintf("unsupported type %q", tag))
}

func isFloatText(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}

// looksPHPSerialized is WordPress's is_serialized() idea of a value worth
// unserializing: a type letter and ':' (or "N;"), ending in ';' or '}'.
func looksPHPSerialized(s string) bool {
	if s == "N;" {
		return true
	}
	if len(s) < 4 || s[1] != ':' {
		return false
	}
	switch s[0] {
	case 'a', 'O', 'C', 's', 'S', 'i', 'd', 'b', 'E':
	default:
		return false
	}
	last := s[len(s)-1]
	return last == ';' || last == '}'
}

// wordpressRoles reads a {prefix}capabilities meta value: the keys of the
// serialized array whose value is true (WordPress's add_role stores
// role => true; a false value is a capability taken away, not granted).
// A value that is not serialized at all is one group name as it is (so a
// groups_query written over another column keeps working); a serialized
// value that is not an array, or is broken, gives no groups, as it gives
// WordPress no roles.
func wordpressRoles(v string) ([]string, error) {
	if !looksPHPSerialized(v) {
		return []string{v}, nil
	}
	pv, err := parsePHPSerialized(v)
	if err != nil {
		return nil, err
	}
	if pv.kind != phpArray {
		return nil, nil
	}
	var out []string
	for _, e := range pv.elems {
		if e.key.kind == phpString && e.key.s != "" && e.val.truthy() {
			out = append(out, e.key.s)
		}
	}
	return out, nil
}
