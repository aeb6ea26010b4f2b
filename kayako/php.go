package kayako

import (
	"math"
	"strconv"
	"strings"
)

// The PHP semantics Kayako's LoginShare classes rely on, written down for
// the few values they touch.

// phpTrimSet is what PHP's trim() removes from both ends by default.
const phpTrimSet = " \t\n\r\x00\x0B"

func phpTrim(s string) string { return strings.Trim(s, phpTrimSet) }

// phpEmpty is PHP's empty() on a string: "" and "0" are empty.
func phpEmpty(s string) bool { return s == "" || s == "0" }

// phpInt is PHP's (int) cast of a string (PHP 7.1 and later): leading white
// space, then the longest prefix that reads as an integer or a decimal
// number with an optional exponent; no such prefix gives 0. A decimal or an
// integer too large for int64 is truncated towards zero and saturated (an
// infinity, such as 1e999, gives 0).
func phpInt(s string) int64 {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\r\v\f", s[i]) >= 0 {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	intDigits := digits()
	integer := true
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		save := i
		i++
		fracDigits = digits()
		if intDigits == 0 && fracDigits == 0 {
			i = save
		} else {
			integer = false
		}
	}
	if intDigits == 0 && fracDigits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		save := i
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			i = save
		} else {
			integer = false
		}
	}
	num := s[start:i]
	if integer {
		if n, err := strconv.ParseInt(num, 10, 64); err == nil {
			return n
		}
	}
	f, _ := strconv.ParseFloat(num, 64) // a syntax PHP reads is one Go reads; range errors give ±Inf
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// asciiLower is PHP 8's strtolower (and mb_strtolower on the ASCII-only
// strings it is applied to here).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
