package sql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A query as the operator wrote it becomes a compiledQuery at provision:
// every {name} placeholder outside literals and comments is replaced by the
// driver's bound-parameter marker, and params lists the value each marker
// takes, in order. Text the person typed never becomes SQL text.
type compiledQuery struct {
	option string   // "user_query" or "groups_query", for errors and logs
	source string   // the query as configured (after {prefix}), for logs
	text   string   // what is sent to the database
	params []string // placeholder names, one per bound argument
	uses   map[string]bool

	// What a reader can see without asking the database: the words
	// (identifiers, lower case, quoted ones unquoted) and whether a * may
	// select columns not named.
	words map[string]bool
	star  bool
}

// args returns the bound arguments for values (placeholder name → value).
func (q *compiledQuery) args(values map[string]any) []any {
	out := make([]any, len(q.params))
	for i, p := range q.params {
		out[i] = values[p]
	}
	return out
}

// mayLackColumn reports whether the query visibly selects no column called
// name: the word appears nowhere and no * could bring it in.
func (q *compiledQuery) mayLackColumn(name string) bool {
	return !q.star && !q.words[name]
}

// syntax is what a dialect's lexer must know about its SQL.
type syntax struct {
	// parameter returns the marker of the n-th distinct placeholder (1-based)
	// and whether one marker may stand for one value several times ($1 may;
	// ? binds one value per occurrence).
	parameter func(n int) (string, bool)
	// Lexical differences between the databases.
	doubleQuotedString bool // MySQL: "…" is a string literal (default sql_mode)
	backslashEscapes   bool // MySQL: \' inside '…' does not end the literal
	backtickIdentifier bool // MySQL, SQLite
	bracketIdentifier  bool // SQLite: [name]
	hashComment        bool // MySQL: # to the end of the line
	dashCommentSpace   bool // MySQL: -- starts a comment only before a space
	nestedComments     bool // PostgreSQL: /* /* */ */
	dollarQuotes       bool // PostgreSQL: $tag$…$tag$, E'…' escapes, $1 markers
	questionMarker     bool // ? is a bound parameter (MySQL, SQLite)
}

// compileQuery checks query and replaces its placeholders. allowed lists
// the placeholders this option knows; prefix replaces {prefix} first (it is
// configuration, validated to hold identifier characters only).
func compileQuery(option, query, prefix string, sx syntax, allowed ...string) (*compiledQuery, error) {
	source := strings.ReplaceAll(query, "{prefix}", prefix)
	q := &compiledQuery{option: option, source: source, uses: map[string]bool{}, words: map[string]bool{}}
	known := map[string]bool{}
	for _, a := range allowed {
		known[a] = true
	}
	numbers := map[string]int{} // placeholder → marker number, for reusable markers
	var out strings.Builder
	var firstWord, lastWord string
	ended := false // a top-level ; was seen
	s := source
	fail := func(format string, args ...any) (*compiledQuery, error) {
		return nil, fmt.Errorf("%s: %s", option, fmt.Sprintf(format, args...))
	}
	for i := 0; i < len(s); {
		c := s[i]
		// Only whitespace and comments may follow a top-level semicolon.
		significant := !isSpace(c) && !startsComment(s, i, sx)
		if ended && significant {
			return fail("must be a single statement (text follows a ';')")
		}
		switch {
		case c == '\'' || (c == '"' && sx.doubleQuotedString):
			backslash := sx.backslashEscapes || (sx.dollarQuotes && i > 0 && (s[i-1] == 'E' || s[i-1] == 'e') && (i < 2 || !isWordByte(s[i-2])))
			end, err := quotedEnd(s, i, c, backslash)
			if err != nil {
				return fail("%v", err)
			}
			if strings.Contains(s[i:end], "{") {
				if name, ok := placeholderIn(s[i:end], allowed); ok {
					return fail("{%s} inside the quoted literal %s would be compared as text, never bound: write it without quotes", name, s[i:end])
				}
			}
			out.WriteString(s[i:end])
			i = end
		case c == '"' || (c == '`' && sx.backtickIdentifier) || (c == '[' && sx.bracketIdentifier):
			closer := c
			if c == '[' {
				closer = ']'
			}
			end, err := quotedEnd(s, i, closer, false)
			if c == '[' {
				end, err = bracketEnd(s, i)
			}
			if err != nil {
				return fail("%v", err)
			}
			ident := s[i+1 : end-1]
			if name, ok := placeholderIn(ident, allowed); ok {
				return fail("{%s} inside the quoted identifier %s is not bound: write it without quotes", name, s[i:end])
			}
			q.words[strings.ToLower(ident)] = true
			lastWord = strings.ToLower(ident)
			if firstWord == "" {
				firstWord = lastWord
			}
			out.WriteString(s[i:end])
			i = end
		case startsComment(s, i, sx):
			end := commentEnd(s, i, sx)
			out.WriteString(s[i:end])
			i = end
		case c == '$' && sx.dollarQuotes && (i == 0 || !isWordByte(s[i-1])):
			if i+1 < len(s) && isDigit(s[i+1]) {
				return fail("write {username} instead of the parameter marker %s: markers are numbered by the backend", markerAt(s, i))
			}
			if tag, ok := dollarTag(s, i); ok {
				close := strings.Index(s[i+len(tag):], tag)
				if close < 0 {
					return fail("unterminated dollar-quoted string %s", tag)
				}
				end := i + len(tag) + close + len(tag)
				if name, ok := placeholderIn(s[i:end], allowed); ok {
					return fail("{%s} inside a dollar-quoted string is not bound: write it outside quotes", name)
				}
				out.WriteString(s[i:end])
				i = end
				continue
			}
			out.WriteByte(c)
			i++
		case c == '?' && sx.questionMarker:
			return fail("write {username} instead of the parameter marker ?: markers are placed by the backend")
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			name := ""
			if end > 0 {
				name = s[i+1 : i+end]
			}
			if !isPlaceholderName(name) {
				out.WriteByte(c)
				i++
				continue
			}
			if !known[name] {
				return fail("unknown placeholder {%s} (%s knows %s)", name, option, braceList(allowed))
			}
			if lastWord == "like" || lastWord == "ilike" {
				return fail("{%s} after %s: a typed %% or _ would be a wildcard; compare with = (use lower() on both sides for case-insensitive matching)", name, strings.ToUpper(lastWord))
			}
			q.uses[name] = true
			if _, reuse := sx.parameter(1); reuse {
				n, ok := numbers[name]
				if !ok {
					n = len(numbers) + 1
					numbers[name] = n
					q.params = append(q.params, name)
				}
				m, _ := sx.parameter(n)
				out.WriteString(m)
			} else {
				m, _ := sx.parameter(len(q.params) + 1)
				q.params = append(q.params, name)
				out.WriteString(m)
			}
			lastWord = ""
			i += end + 1
		case isWordStart(c):
			j := i + 1
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			w := strings.ToLower(s[i:j])
			q.words[w] = true
			lastWord = w
			if firstWord == "" {
				firstWord = w
			}
			out.WriteString(s[i:j])
			i = j
		default:
			if c == '*' {
				q.star = true
			}
			if c == ';' {
				ended = true
			}
			if !isSpace(c) && c != '(' {
				lastWord = ""
			}
			if firstWord == "" && !isSpace(c) && c != '(' {
				return fail("must start with SELECT or WITH")
			}
			out.WriteByte(c)
			i++
		}
	}
	if firstWord != "select" && firstWord != "with" {
		return fail("must be a SELECT statement (the backend only reads)")
	}
	q.text = strings.TrimRight(strings.TrimSpace(out.String()), ";")
	return q, nil
}

func isSpace(c byte) bool     { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isWordStart(c byte) bool { return c == '_' || c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isWordByte(c byte) bool  { return isWordStart(c) || isDigit(c) || c == '$' }

func isPlaceholderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '_' && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// placeholderIn finds an allowed {name} inside quoted text.
func placeholderIn(text string, allowed []string) (string, bool) {
	for _, a := range allowed {
		if strings.Contains(text, "{"+a+"}") {
			return a, true
		}
	}
	return "", false
}

func braceList(names []string) string {
	b := make([]string, len(names))
	for i, n := range names {
		b[i] = "{" + n + "}"
	}
	return strings.Join(b, " and ")
}

// quotedEnd returns the index after the literal or identifier opened by
// quote at s[i]: a doubled quote stands for itself, and with backslash a
// backslash escapes the next byte.
func quotedEnd(s string, i int, quote byte, backslash bool) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if backslash {
				j++
			}
		case quote:
			if j+1 < len(s) && s[j+1] == quote {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c…%c at %q", s[i], quote, excerpt(s[i:]))
}

func bracketEnd(s string, i int) (int, error) {
	j := strings.IndexByte(s[i:], ']')
	if j < 0 {
		return 0, fmt.Errorf("unterminated [ at %q", excerpt(s[i:]))
	}
	return i + j + 1, nil
}

func excerpt(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func startsComment(s string, i int, sx syntax) bool {
	switch {
	case strings.HasPrefix(s[i:], "/*"):
		return true
	case strings.HasPrefix(s[i:], "--"):
		return !sx.dashCommentSpace || i+2 == len(s) || isSpace(s[i+2])
	case s[i] == '#':
		return sx.hashComment
	}
	return false
}

// commentEnd returns the index after the comment starting at s[i] (an
// unterminated block comment runs to the end, as the databases read it, and
// then fails there).
func commentEnd(s string, i int, sx syntax) int {
	if !strings.HasPrefix(s[i:], "/*") {
		if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return len(s)
	}
	depth := 0
	for j := i; j < len(s)-1; j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			if depth == 0 || sx.nestedComments {
				depth++
			}
			j++
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// dollarTag reads a PostgreSQL dollar-quote opener ($$ or $tag$) at s[i].
func dollarTag(s string, i int) (string, bool) {
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[i : j+1], true
		}
		if !(c == '_' || c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z') || (j > i+1 && isDigit(c))) {
			return "", false
		}
	}
	return "", false
}

func markerAt(s string, i int) string {
	j := i + 1
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return s[i:j]
}

// numbered is the PostgreSQL marker: $1, $2, … (a marker may repeat).
func numbered(n int) (string, bool) { return "$" + strconv.Itoa(n), true }

// positional is the MySQL and SQLite marker: one ? per bound value.
func positional(int) (string, bool) { return "?", false }

var errNoQuery = errors.New("user_query is required (the generic preset has no default)")
