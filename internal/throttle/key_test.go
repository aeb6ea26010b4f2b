// Issue 7, point 2 (compatibility spellings), at the level of the key
// recipe: the acceptance test for throttle.UserKey(username, staff) as
// design.md's second-wave `throttle` bullet states it (NFKC, the orbit-based
// case fold, NFKC again; a DOMAIN\ prefix removed on both endpoints, an
// @realm suffix removed on the staff endpoint only).
//
// It is written against that signature, which today's code does not have
// (today: UserKey(username string) string), so it is behind the build
// constraint issue7key: it must not break the compilation of this package's
// other tests until the rewrite lands. Run it with
//
//	go test -tags issue7key -run 'TestUserKeyRecipe' ./internal/throttle
//
// and delete the //go:build line when merging it with the new UserKey.
package throttle_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unicode"

	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
)

// jdoeSpellings are compatibility spellings of jdoe: NFKC maps each of them
// to jdoe or JDOE (checked when the list was written; the test itself does
// not use a normaliser, so it does not depend on the code under test's).
// OpenLDAP 2.5's matching rules accept most of them as uid=jdoe
// (caddymodule/attack_test.go binds with them); monospace, sans-serif italic,
// the bold capitals and the circled capitals it does not, but Active
// Directory and SQL collations have tables of their own.
var jdoeSpellings = []struct{ style, s string }{
	{"fullwidth", "ｊｄｏｅ"},
	{"fullwidth capitals", "ＪＤＯＥ"},
	{"math bold", "𝐣𝐝𝐨𝐞"},
	{"math bold capitals", "𝐉𝐃𝐎𝐄"},
	{"math italic", "𝑗𝑑𝑜𝑒"},
	{"math bold italic", "𝒋𝒅𝒐𝒆"},
	{"math script (with the letterlike ℴ ℯ)", "𝒿𝒹ℴℯ"},
	{"math script capitals (with ℰ)", "𝒥𝒟𝒪ℰ"},
	{"math bold script", "𝓳𝓭𝓸𝓮"},
	{"math fraktur", "𝔧𝔡𝔬𝔢"},
	{"math fraktur capitals", "𝔍𝔇𝔒𝔈"},
	{"math double-struck", "𝕛𝕕𝕠𝕖"},
	{"math double-struck capitals", "𝕁𝔻𝕆𝔼"},
	{"math bold fraktur", "𝖏𝖉𝖔𝖊"},
	{"math sans-serif", "𝗃𝖽𝗈𝖾"},
	{"math sans-serif bold", "𝗷𝗱𝗼𝗲"},
	{"math sans-serif italic", "𝘫𝘥𝘰𝘦"},
	{"math sans-serif bold italic", "𝙟𝙙𝙤𝙚"},
	{"math monospace", "𝚓𝚍𝚘𝚎"},
	{"math monospace capitals", "𝙹𝙳𝙾𝙴"},
	{"circled", "ⓙⓓⓞⓔ"},
	{"circled capitals", "ⒿⒹⓄⒺ"},
	{"modifier letters", "ʲᵈᵒᵉ"},
	{"subscripts", "ⱼdₒₑ"},
	{"mixed fullwidth + ASCII", "ｊdoe"},
	{"mixed circled + ASCII", "ⓙdoe"},
	{"mixed math bold + ASCII", "𝐣doe"},
	{"mixed, compatibility letter last", "jdo𝐞"},
	{"mixed styles and case", "Ｊ𝐃ⓞe"},
	{"mixed double-struck, fraktur, fullwidth", "j𝕕𝔬ｅ"},
	{"mixed modifier letter", "ʲdoe"},
	{"mixed capitals", "JＤoⓔ"},
	{"mixed circled + math + fullwidth", "ⓙ𝐝𝕠ｅ"},
	{"ASCII capitals", "JDOE"},
	{"domain prefix", `EXAMPLE\jdoe`},
	{"fullwidth domain prefix and backslash", "ＥＸＡＭＰＬＥ＼ｊｄｏｅ"},
	{"domain prefix + math bold", `EXAMPLE\𝐣𝐝𝐨𝐞`},
}

func TestUserKeyRecipeSpellingsShareJdoesKey(t *testing.T) {
	for _, staff := range []bool{false, true} {
		want := throttle.UserKey("jdoe", staff)
		if want == "" {
			t.Fatalf("staff=%v: jdoe has the empty key (not counted)", staff)
		}
		for _, sp := range jdoeSpellings {
			if got := throttle.UserKey(sp.s, staff); got != want {
				t.Errorf("staff=%v: %s %q has key %q, jdoe has %q: a banned jdoe gets fresh guesses under it", staff, sp.style, sp.s, got, want)
			}
		}
	}
	// The staff endpoint drops @realm, also behind a fullwidth at sign.
	for _, u := range []string{"jdoe@corp", "JDOE@CORP.EXAMPLE", "jdoe＠corp", "ｊｄｏｅ@corp", `EXAMPLE\jdoe@corp`} {
		if got, want := throttle.UserKey(u, true), throttle.UserKey("jdoe", true); got != want {
			t.Errorf("staff: %q has key %q, want jdoe's %q", u, got, want)
		}
	}
}

func TestUserKeyRecipeKeepsDifferentPeopleApart(t *testing.T) {
	differ := []struct {
		a, b  string
		staff bool
		why   string
	}{
		// Kayako customers log in with their e-mail address.
		{"john@a.com", "john@b.com", false, "user endpoint keeps the realm"},
		{"jdoe@corp", "jdoe", false, "user endpoint keeps the realm"},
		{"jdoe", "jdoe2", false, "different names"},
		{"jdoe", "jdoe2", true, "different names"},
		{"jdoe", "j doe", true, "an inner space is a character"},
		// NFKC maps a parenthesized letter to "(j)": a different name, not jdoe.
		{"⒥⒟⒪⒠", "jdoe", false, "parenthesized letters keep their parentheses"},
		{"jdoe", "", false, "the empty name"},
	}
	for _, d := range differ {
		if ka, kb := throttle.UserKey(d.a, d.staff), throttle.UserKey(d.b, d.staff); ka == kb {
			t.Errorf("staff=%v: %q and %q share key %q (%s)", d.staff, d.a, d.b, ka, d.why)
		}
	}
	same := []struct {
		a, b  string
		staff bool
	}{
		{"John@A.com", "john@a.com", false},
		{"ＪＯＨＮ＠Ａ．ｃｏｍ", "john@a.com", false},
	}
	for _, s := range same {
		if ka, kb := throttle.UserKey(s.a, s.staff), throttle.UserKey(s.b, s.staff); ka != kb {
			t.Errorf("staff=%v: %q has key %q, %q has %q", s.staff, s.a, ka, s.b, kb)
		}
	}
}

// checkIdempotent reports a string whose key is not its own key's key: that
// key, stored as a bucket, would be a different bucket when typed back.
func checkIdempotent(t *testing.T, s string, staff bool, failures *int) {
	t.Helper()
	k := throttle.UserKey(s, staff)
	if k2 := throttle.UserKey(k, staff); k2 != k {
		*failures++
		if *failures <= 25 {
			t.Errorf("staff=%v: key(%+q) = %+q, but key(%+q) = %+q", staff, s, k, k, k2)
		}
	}
}

func TestUserKeyRecipeIdempotentOnEveryCodePoint(t *testing.T) {
	for _, staff := range []bool{false, true} {
		failures := 0
		for r := rune(0); r <= unicode.MaxRune; r++ {
			if 0xD800 <= r && r <= 0xDFFF { // surrogates are not UTF-8
				continue
			}
			checkIdempotent(t, string(r), staff, &failures)
		}
		if failures > 0 {
			t.Errorf("staff=%v: %d code points are not idempotent", staff, failures)
		}
	}
}

// interesting are code points where normalisation, case folding and the
// prefix/suffix cuts interact: special case mappings, orbits of three or
// more, compatibility characters that become '@' or '\', combining marks that
// compose with what precedes them, Hangul jamo, characters with no case
// orbit whose lower case differs (İ).
var interesting = []rune{
	'a', 'A', 'i', 'I', 'j', 's', 'k', ' ', '@', '\\', '.',
	'İ', 'ı', 'ß', 'ẞ', 'ſ', 'K', 'Å', 'Ω', 'Ǆ', 'ǅ', 'ǆ', 'ǈ',
	'\u0345', 'ι', 'ι', 'ΐ', 'ΐ', 'ϴ', 'ϑ', 'ϐ', 'ẛ', 'ﬀ', 'ﬅ', 'ǰ', 'ẖ', 'ᾈ', 'ᾀ', 'ᾼ',
	'α', 'Σ', 'σ', 'ς', 'Ꭰ', 'ꭰ', 'Ⅸ', 'ⅸ', '㎏', 'ℌ', 'ｊ', 'Ｊ', '＠', '﹫', '＼', '﹨',
	'⒥', 'ⓙ', 'Ⓙ', '𝐣', '𝐉', 'ℯ',
	'\u0301', '\u0307', '\u0308', '\u0313', '\u0340', '\u0342', '\u0344', '\u0323', '\u0338',
	'\u0F73', '\u0F77', '\u0F79', '\u0F81',
	'ᄀ', 'ᅡ', 'ᆨ', '가', 'ㄱ', 'ㅏ', '\u3164', '\uFFA0',
	'\u00AD', '\u200B', '\u200D', '\uFEFF', '\u00A0', '\u3000', '\u2028',
	'\u00C5', '\u212B', '\u0041', '\u030A', '\uFB2A', '\u05E9', '\u05C1',
}

func TestUserKeyRecipeIdempotentOnRunePairs(t *testing.T) {
	for _, staff := range []bool{false, true} {
		failures := 0
		for _, a := range interesting {
			for _, b := range interesting {
				checkIdempotent(t, string([]rune{a, b}), staff, &failures)
				checkIdempotent(t, string([]rune{'j', a, 'd', b}), staff, &failures)
			}
		}
		// Random pairs over all of Unicode, and pairs of a random code point
		// with an interesting one, from a fixed seed (reproducible).
		rng := rand.New(rand.NewPCG(7, 2026))
		randRune := func() rune {
			for {
				if r := rune(rng.IntN(unicode.MaxRune + 1)); r < 0xD800 || r > 0xDFFF {
					return r
				}
			}
		}
		for i := 0; i < 200000; i++ {
			a, b := randRune(), randRune()
			c := interesting[rng.IntN(len(interesting))]
			checkIdempotent(t, string([]rune{a, b}), staff, &failures)
			checkIdempotent(t, string([]rune{a, c}), staff, &failures)
			checkIdempotent(t, string([]rune{c, a}), staff, &failures)
		}
		if failures > 0 {
			t.Errorf("staff=%v: %d strings are not idempotent", staff, failures)
		}
	}
}

// An independent statement of the case rule: names that differ only in
// simple case folding (strings.EqualFold, one orbit of unicode.SimpleFold)
// share a key, for every code point.
func TestUserKeyRecipeOneKeyPerCaseOrbit(t *testing.T) {
	for _, staff := range []bool{false, true} {
		failures := 0
		for r := rune(0); r <= unicode.MaxRune; r++ {
			f := unicode.SimpleFold(r)
			if f == r {
				continue
			}
			if a, b := throttle.UserKey(string(r), staff), throttle.UserKey(string(f), staff); a != b {
				failures++
				if failures <= 25 {
					t.Errorf("staff=%v: %s and %s fold alike but have keys %+q and %+q", staff, fmt.Sprintf("%U", r), fmt.Sprintf("%U", f), a, b)
				}
			}
		}
		if failures > 0 {
			t.Errorf("staff=%v: %d code points do not share their case orbit's key", staff, failures)
		}
	}
}
