package kayako

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kayako reads a reply with @simplexml_load_string(trim($body)), that is
// libxml2 with its default options: the document must be well-formed, or
// there is nothing to read. This file decides well-formedness as libxml2
// does for the documents a LoginShare endpoint plausibly sends, on top of
// encoding/xml's tokenizer (which is lenient in a few places libxml2 is
// not, checked here), and builds the little SimpleXML sees of the result.
//
// Modelled: the XML declaration's grammar and version; UTF-8 (with or
// without a byte order mark), ISO-8859-1, ISO-8859-15, windows-1252 and US-ASCII
// documents; one root element with only white space, comments and
// processing instructions around it; a DOCTYPE before the root, whose
// internal general entities with literal values are expanded; matching end
// tags, unique attributes separated by white space, character references
// to XML characters only, "]]>" only as a CDATA end, no "xml" processing
// instruction after the start. Not modelled: other encodings (reported as
// errUnsupportedEncoding), parameter entities and entity values containing
// markup, names that only XML 1.0's fifth edition allows (encoding/xml
// knows the older tables).

// element is what SimpleXML sees of an element: its name, the text of its
// direct text and CDATA children (what (string) returns) and its element
// children.
type element struct {
	prefix, local string
	text          strings.Builder
	children      []*element
	// nodes counts libxml2's child nodes (a run of text, a CDATA section, a
	// comment, a processing instruction, an element); textOnly says whether
	// the last one is a run of text.
	nodes    int
	lastText bool
}

// addNode records a child node of kind text (merged with a text run before
// it) or any other kind.
func (e *element) addNode(text bool) {
	if !(text && e.lastText) {
		e.nodes++
	}
	e.lastText = text
}

// child is SimpleXML's $e->name: the first child element called name that
// has no namespace prefix (an element in a default namespace matches, a
// prefixed one never does). nil when isset() would be false.
func (e *element) child(name string) *element {
	if e == nil {
		return nil
	}
	for _, c := range e.children {
		if c.prefix == "" && c.local == name {
			return c
		}
	}
	return nil
}

// all is foreach ($e->name as …): every such child, in order.
func (e *element) all(name string) []*element {
	if e == nil {
		return nil
	}
	var out []*element
	for _, c := range e.children {
		if c.prefix == "" && c.local == name {
			out = append(out, c)
		}
	}
	return out
}

// String is SimpleXML's (string) cast; "" for a missing element.
func (e *element) String() string {
	if e == nil {
		return ""
	}
	return e.text.String()
}

// errUnsupported marks a document this reading does not model (an encoding
// it does not decode, an entity whose value holds markup): libxml2 may read
// it.
var errUnsupported = errors.New("not modelled by this check")

// parseSimpleXML parses a trimmed reply the way simplexml_load_string does
// and returns its root element, or why libxml2 would refuse it.
func parseSimpleXML(doc []byte) (*element, error) {
	doc = bytes.TrimPrefix(doc, []byte("\xEF\xBB\xBF"))
	rest, enc, err := xmlDeclaration(doc)
	if err != nil {
		return nil, err
	}
	text, err := decode(rest, enc)
	if err != nil {
		return nil, err
	}
	return buildTree(text)
}

var (
	declVersion    = regexp.MustCompile(`^version[ \t\r\n]*=[ \t\r\n]*("1\.[0-9]*"|'1\.[0-9]*')`)
	declEncoding   = regexp.MustCompile(`^encoding[ \t\r\n]*=[ \t\r\n]*("[A-Za-z][A-Za-z0-9._-]*"|'[A-Za-z][A-Za-z0-9._-]*')`)
	declStandalone = regexp.MustCompile(`^standalone[ \t\r\n]*=[ \t\r\n]*("yes"|"no"|'yes'|'no')`)
)

// xmlDeclaration checks an XML declaration at the very start of doc and
// returns what follows it and the declared encoding (lower case, "" when
// none).
func xmlDeclaration(doc []byte) (rest []byte, enc string, err error) {
	if !bytes.HasPrefix(doc, []byte("<?xml")) || len(doc) < 6 || !xmlSpace(doc[5]) {
		return doc, "", nil
	}
	end := bytes.Index(doc, []byte("?>"))
	if end < 0 {
		return nil, "", errors.New("unterminated XML declaration")
	}
	s := string(doc[5:end])
	skip := func() bool {
		t := strings.TrimLeft(s, " \t\r\n")
		had := len(t) < len(s)
		s = t
		return had
	}
	skip()
	m := declVersion.FindString(s)
	if m == "" {
		return nil, "", errors.New("XML declaration without a valid version 1.x")
	}
	s = s[len(m):]
	for _, part := range []struct {
		re  *regexp.Regexp
		out *string
	}{{declEncoding, &enc}, {declStandalone, nil}} {
		save := s
		if !skip() {
			break
		}
		if m := part.re.FindString(s); m != "" {
			if part.out != nil {
				*part.out = strings.ToLower(m[strings.IndexAny(m, `"'`)+1 : len(m)-1])
			}
			s = s[len(m):]
		} else {
			s = save
		}
	}
	skip()
	if s != "" {
		return nil, "", fmt.Errorf("malformed XML declaration near %q", s)
	}
	return doc[end+2:], enc, nil
}

func xmlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// cp1252 maps windows-1252's bytes 0x80–0x9F; 0 marks the five it leaves
// undefined (iconv, which libxml2 uses for it, refuses them).
var cp1252 = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

// latin9Diff is where ISO-8859-15 differs from ISO-8859-1.
var latin9Diff = map[byte]rune{0xA4: 0x20AC, 0xA6: 0x0160, 0xA8: 0x0161, 0xB4: 0x017D, 0xB8: 0x017E, 0xBC: 0x0152, 0xBD: 0x0153, 0xBE: 0x0178}

// decode turns the document into UTF-8 according to its declared encoding.
func decode(b []byte, enc string) ([]byte, error) {
	switch enc {
	case "", "utf-8", "utf8":
		return b, nil
	case "us-ascii", "ascii", "iso646-us", "ansi_x3.4-1968":
		for _, c := range b {
			if c >= 0x80 {
				return nil, errors.New("a byte above 0x7F in a US-ASCII document")
			}
		}
		return b, nil
	case "utf-16", "utf16":
		// A document whose declaration could be read as ASCII is not UTF-16.
		return nil, errors.New("declared UTF-16 but written in a single-byte encoding")
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "iso-latin-1", "cp819", "ibm819",
		"iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9",
		"windows-1252", "cp1252":
		win := enc == "windows-1252" || enc == "cp1252"
		latin9 := strings.HasSuffix(enc, "8859-15") || strings.HasPrefix(enc, "latin") && strings.HasSuffix(enc, "9")
		out := make([]byte, 0, len(b)+len(b)/8)
		for _, c := range b {
			r := rune(c)
			switch {
			case win && c >= 0x80 && c < 0xA0:
				if r = cp1252[c-0x80]; r == 0 {
					return nil, fmt.Errorf("byte 0x%02X is not defined in windows-1252", c)
				}
			case latin9:
				if l, ok := latin9Diff[c]; ok {
					r = l
				}
			}
			out = utf8.AppendRune(out, r)
		}
		return out, nil
	}
	return nil, fmt.Errorf("encoding %q: %w", enc, errUnsupported)
}

var doubleColon = regexp.MustCompile(`[<\s][^\s<>=/"']*:[^\s<>=/"']*:`)

var entityDecl = regexp.MustCompile(`<!ENTITY[ \t\r\n]+([^ \t\r\n%"'<>]+)[ \t\r\n]+("[^"]*"|'[^']*')[ \t\r\n]*>`)

// buildTree tokenizes a UTF-8 document without its declaration.
func buildTree(doc []byte) (*element, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var (
		root    *element
		stack   []*element
		doctype bool
		prev    int64
	)
	for {
		if root != nil && len(stack) == 0 {
			// libxml2 ends the document at a NUL byte where the next markup
			// after the root element would start.
			if rest := bytes.TrimLeft(doc[prev:], " \t\r\n"); len(rest) > 0 && rest[0] == 0 {
				return root, nil
			}
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			if doubleColon.Match(doc) {
				// libxml2 takes a name such as a:b:c with a namespace
				// warning; encoding/xml stops at it.
				return nil, fmt.Errorf("%v (a name with two colons): %w", err, errUnsupported)
			}
			return nil, err
		}
		raw := doc[prev:d.InputOffset()]
		prev = d.InputOffset()
		var top *element
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if top == nil && root != nil {
				return nil, errors.New("content after the root element")
			}
			if err := checkStartTag(raw, t); err != nil {
				return nil, err
			}
			e := &element{prefix: t.Name.Space, local: t.Name.Local}
			if top == nil {
				root = e
			} else {
				top.children = append(top.children, e)
				top.addNode(false)
			}
			stack = append(stack, e)
		case xml.EndElement:
			if top == nil || t.Name.Space != top.prefix || t.Name.Local != top.local {
				return nil, fmt.Errorf("end tag </%s> does not match", qname(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			cdata := bytes.HasPrefix(raw, []byte("<![CDATA["))
			if !cdata {
				if bytes.Contains(raw, []byte("]]>")) {
					return nil, errors.New(`"]]>" in text`)
				}
				if err := checkCharRefs(raw); err != nil {
					return nil, err
				}
			}
			if top == nil {
				if cdata || len(bytes.Trim(t, " \t\r\n")) > 0 {
					return nil, errors.New("text outside the root element")
				}
				continue
			}
			top.text.Write(t)
			top.addNode(!cdata)
		case xml.Comment:
			if top != nil {
				top.addNode(false)
			}
			if !xmlChars(raw) {
				return nil, errors.New("a character XML forbids in a comment")
			}
		case xml.ProcInst:
			if top != nil {
				top.addNode(false)
			}
			if strings.EqualFold(t.Target, "xml") {
				return nil, errors.New("an XML declaration after the start of the document")
			}
			if after := raw[2+len(t.Target):]; !bytes.HasPrefix(after, []byte("?>")) && (len(after) == 0 || !xmlSpace(after[0])) {
				return nil, fmt.Errorf("processing instruction <?%s not followed by white space", t.Target)
			}
			if !xmlChars(raw) {
				return nil, errors.New("a character XML forbids in a processing instruction")
			}
		case xml.Directive:
			if top != nil || root != nil || doctype || !bytes.HasPrefix(t, []byte("DOCTYPE")) {
				return nil, fmt.Errorf("misplaced <!%s", firstWord(t))
			}
			doctype = true
			// encoding/xml drops comments from a directive: check the raw text.
			body := raw[2 : len(raw)-1]
			if err := checkDoctype(body); err != nil {
				return nil, err
			}
			for _, m := range entityDecl.FindAllSubmatch(body, -1) {
				if d.Entity == nil {
					d.Entity = map[string]string{}
				}
				if bytes.ContainsAny(m[2], "<&%") || bytes.Contains(m[2], []byte("]]>")) {
					return nil, fmt.Errorf("entity %s holds markup or references: %w", m[1], errUnsupported)
				}
				if _, seen := d.Entity[string(m[1])]; !seen { // the first declaration binds
					v := strings.ReplaceAll(string(m[2][1:len(m[2])-1]), "\r\n", "\n")
					d.Entity[string(m[1])] = strings.ReplaceAll(v, "\r", "\n")
				}
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("<%s> is not closed", qname(xml.Name{Space: stack[len(stack)-1].prefix, Local: stack[len(stack)-1].local}))
	}
	return root, nil
}

// xmlChars reports whether b is UTF-8 made of characters XML 1.0 allows.
func xmlChars(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if !(r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000) {
			return false
		}
		b = b[n:]
	}
	return true
}

var (
	doctypeHead = regexp.MustCompile(`^DOCTYPE[ \t\r\n]*` + xmlName +
		`(?:[ \t\r\n]+(?:SYSTEM[ \t\r\n]+` + quoted + `|PUBLIC[ \t\r\n]+` + quoted + `[ \t\r\n]+` + quoted + `))?[ \t\r\n]*`)
	subsetDecl = regexp.MustCompile(`^<!(?:ELEMENT|ATTLIST|NOTATION)[ \t\r\n](?:[^"'>]|"[^"]*"|'[^']*')*>`)
	entityFull = regexp.MustCompile(`^<!ENTITY[ \t\r\n]+(?:%[ \t\r\n]+)?` + xmlName + `[ \t\r\n]+(?:` + quoted +
		`|SYSTEM[ \t\r\n]+` + quoted + `|PUBLIC[ \t\r\n]+` + quoted + `[ \t\r\n]+` + quoted + `)(?:[ \t\r\n]+NDATA[ \t\r\n]+` + xmlName + `)?[ \t\r\n]*>`)
	peRef = regexp.MustCompile(`^%` + xmlName + `;`)
)

const (
	xmlName = `[A-Za-z_:\x{80}-\x{10FFFF}][A-Za-z0-9._:\x{80}-\x{10FFFF}-]*`
	quoted  = `(?:"[^"]*"|'[^']*')`
)

// checkDoctype checks a DOCTYPE's outline as libxml2 2.9 does (it lets the
// white space after DOCTYPE go): a name, an optional external
// identifier, and an internal subset of declarations, comments, processing
// instructions and parameter-entity references (their insides are not
// checked).
func checkDoctype(d []byte) error {
	if !xmlChars(d) {
		return errors.New("a character XML forbids in the DOCTYPE")
	}
	head := doctypeHead.Find(d)
	if head == nil {
		return errors.New("malformed DOCTYPE")
	}
	rest := d[len(head):]
	if len(rest) == 0 {
		return nil
	}
	if rest[0] != '[' {
		return errors.New("malformed DOCTYPE")
	}
	rest = rest[1:]
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		switch {
		case len(rest) == 0:
			return errors.New("DOCTYPE internal subset not closed")
		case rest[0] == ']':
			if len(bytes.TrimLeft(rest[1:], " \t\r\n")) > 0 {
				return errors.New("malformed DOCTYPE after its internal subset")
			}
			return nil
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 || bytes.Contains(rest[4:4+end], []byte("--")) {
				return errors.New("malformed comment in the DOCTYPE")
			}
			rest = rest[4+end+3:]
		case bytes.HasPrefix(rest, []byte("<?")):
			end := bytes.Index(rest, []byte("?>"))
			if end < 0 {
				return errors.New("malformed processing instruction in the DOCTYPE")
			}
			rest = rest[end+2:]
		default:
			m := subsetDecl.Find(rest)
			if m == nil {
				m = entityFull.Find(rest)
			}
			if m == nil {
				m = peRef.Find(rest)
			}
			if m == nil {
				return errors.New("malformed DOCTYPE internal subset")
			}
			rest = rest[len(m):]
		}
	}
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func firstWord(b []byte) string {
	if i := bytes.IndexAny(b, " \t\r\n"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// checkStartTag adds what encoding/xml lets through in a start tag:
// attributes must be separated by white space and appear once each, and
// their character references must name XML characters.
func checkStartTag(raw []byte, t xml.StartElement) error {
	seen := make(map[xml.Name]bool, len(t.Attr))
	for _, a := range t.Attr {
		if seen[a.Name] {
			return fmt.Errorf("attribute %s given twice", qname(a.Name))
		}
		seen[a.Name] = true
	}
	var quote byte
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
			if i+1 < len(raw) && !xmlSpace(raw[i+1]) && raw[i+1] != '/' && raw[i+1] != '>' {
				return errors.New("attributes not separated by white space")
			}
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		}
	}
	return checkCharRefs(raw)
}

// checkCharRefs refuses a character reference to a surrogate, which
// encoding/xml turns into U+FFFD and libxml2 refuses (the other non-XML
// characters encoding/xml refuses itself).
func checkCharRefs(raw []byte) error {
	for {
		i := bytes.Index(raw, []byte("&#"))
		if i < 0 {
			return nil
		}
		raw = raw[i+2:]
		end := bytes.IndexByte(raw, ';')
		if end < 0 {
			return nil // encoding/xml reports it
		}
		num, base := string(raw[:end]), 10
		if strings.HasPrefix(num, "x") {
			num, base = num[1:], 16
		}
		if n, err := strconv.ParseUint(num, base, 32); err == nil && n >= 0xD800 && n <= 0xDFFF {
			return fmt.Errorf("character reference &#%s; to a surrogate", raw[:end])
		}
		raw = raw[end:]
	}
}
