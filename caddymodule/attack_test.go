package caddymodule

// Issue 7 (attacks on the throttle, through a real Caddy), points 1, 2, 4
// and 6:
//
//   - point 1: a burst of simultaneous wrong passwords reaches the real slapd
//     as at most per_user binds (counted in slapd's own stats log), from one
//     address and from fifty;
//   - point 2: a banned name under compatibility spellings that OpenLDAP
//     treats as uid=jdoe gets no bind and no login, even with the right
//     password; the staff endpoint refuses a typed name NFKC would change
//     (bad_request, "username not in normal form", no backend call, not
//     counted);
//   - point 4: an ipaddress that does not parse is counted by per_ip by its
//     trimmed, lower-cased text;
//   - point 6: a body trickled in slower than the timeout is answered at the
//     request's deadline with 408, the failure document and Connection: close.
//
// Points 3 (zones), 5 (memory), 7 (WARNs) and 8 (control-character names)
// are in zone_test.go, attack_memory_test.go, attack_warn_test.go and
// attack_names_test.go; the Active Directory side of points 1 and 2 in
// samba_lockout_test.go. Helpers of these files are prefixed atk.

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

// atkFast is fastFail without `throttle off`: these tests are about the throttle.
const atkFast = `failure_delay 1ms
	failure_jitter 1ms`

// atkLDAPSite serves the fixture slapd (ldaps://) behind throttleBlock
// (empty: the default throttle, per_user 5 and per_ip 20).
func atkLDAPSite(t *testing.T, dir *slapdtest.Server, throttleBlock string) *site {
	t.Helper()
	t.Setenv("LOGINSHARE_TEST_BIND_PASSWORD", dir.BindPassword)
	return startCaddy(t, "", fmt.Sprintf("loginshare {\n%s\n%s\n%s\n%s\n}", atkFast, ldapMapping, throttleBlock, ldapBackend(dir, "")))
}

// atkBurst sends n form POSTs to path at the same instant: every request is
// built and its goroutine waiting before a shared start signal.
func atkBurst(t *testing.T, s *site, path string, n int, f func(i int) url.Values) []reply {
	t.Helper()
	out := make([]reply, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(f(i).Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i], errs[i] = s.tryReq(req)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("burst request %d: %v", i, err)
		}
	}
	return out
}

// atkNoSuccess fails the test for every reply that is not a well-formed
// failure document with the generic message.
func atkNoSuccess(t *testing.T, what string, rs []reply) {
	t.Helper()
	for i, r := range rs {
		if r.Doc.Result != "0" || r.Doc.Message == nil || *r.Doc.Message != DefaultMessageInvalid {
			t.Errorf("%s, request %d: want the invalid-credentials failure, got %s", what, i, r.Body)
		}
	}
}

// Point 1, slapd: the attacker sent 50 wrong passwords for one user
// at the same instant and all 50 became binds (28 to 50 from 50 addresses).
// Attempts must be reserved before the backend is asked, so a burst gets no
// more binds than a patient attacker: per_user, and not one more.
func TestBurstOfWrongPasswordsBindsAtMostPerUser(t *testing.T) {
	dir := slapdtest.StartWith(t, slapdtest.Options{StatsLog: true})
	s := atkLDAPSite(t, dir, "") // the default throttle: per_user 5 10m, per_ip 20 10m
	const perUser, burst = 5, 50

	for _, tc := range []struct {
		name, user, dn string
		ip             func(i int) string
	}{
		{"one address", slapdtest.JDoe, slapdtest.JDoeDN, func(int) string { return "203.0.113.50" }},
		{"fifty addresses", slapdtest.Admin1, slapdtest.Admin1DN, func(i int) string { return fmt.Sprintf("198.51.100.%d", i+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dir.BindCount(t, tc.dn)
			rs := atkBurst(t, s, "/loginshare/user", burst, func(i int) url.Values {
				return form("username", tc.user, "password", fmt.Sprintf("wrong-%d", i), "ipaddress", tc.ip(i))
			})
			atkNoSuccess(t, "burst", rs)
			binds := dir.BindCount(t, tc.dn) - before
			t.Logf("%d simultaneous wrong passwords for %s: %d binds reached slapd", burst, tc.user, binds)
			if binds == 0 {
				t.Fatalf("no bind for %s in slapd's stats log: the burst never reached the directory, the test proves nothing", tc.dn)
			}
			if binds > perUser {
				t.Errorf("%d simultaneous wrong passwords became %d binds for %s; per_user is %d", burst, binds, tc.dn, perUser)
			}
			// And the account is banned now: the right password is refused
			// without a bind.
			before = dir.BindCount(t, tc.dn)
			mustFail(t, s.post("/loginshare/user", form("username", tc.user, "password", slapdtest.Password, "ipaddress", "192.0.2.200")), 200, DefaultMessageInvalid)
			if n := dir.BindCount(t, tc.dn) - before; n != 0 {
				t.Errorf("after the burst the right password was still bound %d times", n)
			}
		})
	}
}

// atkSlapdSpellings are compatibility spellings of jdoe that OpenLDAP 2.5's
// caseIgnoreMatch treats as uid=jdoe (checked by the test against the
// running slapd): each one is a guess on the real account. Monospace, sans-
// serif italic, bold capitals and circled capitals it does not match; they
// are in the staff test and internal/throttle/key_test.go. Parenthesized
// letters (⒥) are not a spelling of jdoe at all: NFKC makes them "(j)".
var atkSlapdSpellings = []struct{ style, s string }{
	{"fullwidth", "ｊｄｏｅ"},
	{"fullwidth capitals", "ＪＤＯＥ"},
	{"math bold", "𝐣𝐝𝐨𝐞"},
	{"math italic", "𝑗𝑑𝑜𝑒"},
	{"math bold italic", "𝒋𝒅𝒐𝒆"},
	{"math script", "𝒿𝒹ℴℯ"},
	{"math bold script", "𝓳𝓭𝓸𝓮"},
	{"math fraktur", "𝔧𝔡𝔬𝔢"},
	{"math double-struck", "𝕛𝕕𝕠𝕖"},
	{"math bold fraktur", "𝖏𝖉𝖔𝖊"},
	{"math sans-serif", "𝗃𝖽𝗈𝖾"},
	{"math sans-serif bold", "𝗷𝗱𝗼𝗲"},
	{"circled", "ⓙⓓⓞⓔ"},
	{"mixed fullwidth", "ｊdoe"},
	{"mixed fullwidth capital", "Ｊdoe"},
	{"mixed fullwidth tail", "jｄｏｅ"},
	{"mixed circled", "ⓙdoe"},
	{"mixed circled pair", "ⓙⓓoe"},
	{"mixed math bold", "𝐣doe"},
	{"mixed math bold pair", "𝐣𝐝oe"},
	{"mixed math bold last", "jdo𝐞"},
	{"mixed double-struck", "𝕛doe"},
	{"mixed bold script", "j𝓭oe"},
	{"mixed script", "𝒿doe"},
	{"mixed sans-serif bold", "𝗷doe"},
	{"mixed fraktur", "𝔧doe"},
	{"mixed italic", "𝑗doe"},
	{"mixed modifier letter", "ʲdoe"},
	{"mixed double-struck, fraktur, fullwidth", "j𝕕𝔬ｅ"},
	{"mixed circled, bold, double-struck, fullwidth", "ⓙ𝐝𝕠ｅ"},
	{"mixed capitals", "JＤoⓔ"},
	{"capitals with a circled letter", "JDOⓔ"},
}

// Point 2, slapd: with jdoe banned, every spelling slapd takes for uid=jdoe
// got five fresh guesses, each a bind on the real account, and `ⓙdoe` with
// the right password logged in during the ban.
func TestCompatibilitySpellingsOfABannedNameNeverReachTheDirectory(t *testing.T) {
	dir := slapdtest.StartWith(t, slapdtest.Options{StatsLog: true})

	// Each spelling must really be jdoe to slapd, or it proves nothing here.
	admin := dir.Admin(t)
	for _, sp := range atkSlapdSpellings {
		res, err := admin.Search(goldap.NewSearchRequest(slapdtest.PeopleDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
			"(&(objectClass=inetOrgPerson)(uid="+goldap.EscapeFilter(sp.s)+"))", []string{"uid"}, nil))
		if err != nil || len(res.Entries) != 1 || !strings.EqualFold(res.Entries[0].DN, slapdtest.JDoeDN) {
			t.Fatalf("%s %q: slapd no longer matches it to %s (%v); take it out of atkSlapdSpellings", sp.style, sp.s, slapdtest.JDoeDN, err)
		}
	}
	if len(atkSlapdSpellings) < 20 {
		t.Fatalf("only %d spellings", len(atkSlapdSpellings))
	}

	s := atkLDAPSite(t, dir, `throttle {
		per_user 5 10m
		per_ip 0
		max_keys 7001
	}`)
	before := dir.BindCount(t, slapdtest.JDoeDN)
	for i := 0; i < 5; i++ {
		mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", fmt.Sprintf("wrong-%d", i), "ipaddress", "203.0.113.60")), 200, DefaultMessageInvalid)
	}
	if n := dir.BindCount(t, slapdtest.JDoeDN) - before; n != 5 {
		t.Fatalf("5 sequential wrong passwords made %d binds in slapd's log, want 5: the bind count is not trustworthy", n)
	}
	banned := dir.BindCount(t, slapdtest.JDoeDN)
	mustFail(t, s.post("/loginshare/user", form("username", "jdoe", "password", slapdtest.Password, "ipaddress", "203.0.113.61")), 200, DefaultMessageInvalid)

	leaked := map[string]int{}
	for k, sp := range atkSlapdSpellings {
		b0 := dir.BindCount(t, slapdtest.JDoeDN)
		ip := fmt.Sprintf("198.51.100.%d", k+1)
		// The right password first (before this spelling's own typed key
		// has any failures), then five guesses.
		r := s.post("/loginshare/user", form("username", sp.s, "password", slapdtest.Password, "ipaddress", ip))
		if r.Doc.Result != "0" {
			t.Errorf("%s %q logged in with the right password while jdoe is banned", sp.style, sp.s)
		}
		for i := 0; i < 5; i++ {
			r := s.post("/loginshare/user", form("username", sp.s, "password", fmt.Sprintf("guess-%d", i), "ipaddress", ip))
			mustFail(t, r, 200, DefaultMessageInvalid)
		}
		if n := dir.BindCount(t, slapdtest.JDoeDN) - b0; n > 0 {
			leaked[sp.s] = n
		}
	}
	if total := dir.BindCount(t, slapdtest.JDoeDN) - banned; total != 0 {
		t.Errorf("while jdoe was banned, %d binds for %s reached slapd under %d of %d compatibility spellings: %v",
			total, slapdtest.JDoeDN, len(leaked), len(atkSlapdSpellings), leaked)
	}
}

// atkStaffSpellings are typed names NFKC changes; every one must be refused
// on the staff endpoint before any backend call.
var atkStaffSpellings = []string{
	"ｊｄｏｅ", "ＪＤＯＥ", "𝐣𝐝𝐨𝐞", "𝐉𝐃𝐎𝐄", "𝑗𝑑𝑜𝑒", "𝒋𝒅𝒐𝒆", "𝒿𝒹ℴℯ", "𝒥𝒟𝒪ℰ", "𝓳𝓭𝓸𝓮", "𝔧𝔡𝔬𝔢",
	"𝕛𝕕𝕠𝕖", "𝕁𝔻𝕆𝔼", "𝖏𝖉𝖔𝖊", "𝗃𝖽𝗈𝖾", "𝗷𝗱𝗼𝗲", "𝘫𝘥𝘰𝘦", "𝙟𝙙𝙤𝙚", "𝚓𝚍𝚘𝚎", "𝙹𝙳𝙾𝙴",
	"ⓙⓓⓞⓔ", "ⒿⒹⓄⒺ", "ʲᵈᵒᵉ", "ⱼdₒₑ", "ｊdoe", "ⓙdoe", "𝐣doe", "jdo𝐞", "Ｊ𝐃ⓞe", "j𝕕𝔬ｅ",
	"⒥⒟⒪⒠", // NFKC: "(j)(d)(o)(e)" — not jdoe, but not in normal form either
	`ＥＸＡＭＰＬＥ＼jdoe`, "jdoe＠example.org", "ｊｄｏｅ@example.org",
}

// Point 2, staff endpoint: Kayako links staff by the typed name, so a
// spelling NFKC would change must be refused before any backend call, as
// bad_request with reason "username not in normal form", and not counted.
func TestStaffEndpointRefusesNamesNotInNormalForm(t *testing.T) {
	const name = "atk-nfkc-staff"
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	throttle {
		per_user 3 10m
		per_ip 3 10m
		max_keys 7002
	}
	staff_teams {
		helpdesk-staff Support
	}
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, atkFast, name))
	before := fakeCount(name)
	for _, u := range atkStaffSpellings {
		r := s.post("/loginshare/staff", form("username", u, "password", "s3cret", "interface", "staff", "ipaddress", "203.0.113.70"))
		mustFail(t, r, 200, DefaultMessageInvalid)
	}
	if n := fakeCount(name) - before; n != 0 {
		t.Errorf("%d of %d staff logins with names NFKC would change reached the backend", n, len(atkStaffSpellings))
	}
	// Names already in normal form still reach it (upper case is a matter for
	// the directory, not for NFKC), and the refusals above were not counted:
	// far more than per_user and per_ip of them came from one address for
	// what is one person, yet jdoe logs in from that address.
	before = fakeCount(name)
	mustFail(t, s.post("/loginshare/staff", form("username", "JDOE", "password", "s3cret", "interface", "staff", "ipaddress", "203.0.113.71")), 200, DefaultMessageInvalid)
	if fakeCount(name) == before {
		t.Error("JDOE (in normal form) never reached the backend")
	}
	if r := s.post("/loginshare/staff", form("username", "jdoe", "password", "s3cret", "interface", "staff", "ipaddress", "203.0.113.70")); r.Doc.Result != "1" {
		t.Errorf("jdoe refused after the refused spellings: they were counted (%s)", r.Body)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range auditLines(t, s.logFile) {
		u, _ := l["username"].(string)
		if l["endpoint"] != "staff" || u == "jdoe" || u == "JDOE" {
			continue
		}
		seen[u] = true
		reason, _ := l["reason"].(string)
		if l["outcome"] != "bad_request" || !strings.Contains(reason, "username not in normal form") {
			t.Errorf("staff login as %q: outcome %v, reason %q; want bad_request, \"username not in normal form\"", u, l["outcome"], reason)
		}
	}
	if len(seen) != len(atkStaffSpellings) {
		t.Errorf("%d audit lines for the %d spellings", len(seen), len(atkStaffSpellings))
	}
}

// Point 4: `203.000.113.8`, `203.0.113.9, 10.0.0.1`, `ip:port` and `unknown`
// were never counted by per_ip. Each is counted by its own trimmed,
// lower-cased text; other addresses are not touched.
func TestUnparsableIPAddressIsCountedByItsText(t *testing.T) {
	const name = "atk-ip-text"
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	%s
	throttle {
		per_user 0
		per_ip 3 10m
		max_keys 7003
	}
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, atkFast, name))
	for k, tc := range []struct {
		text     string
		variants []string // the same key after trimming and lower-casing
	}{
		{"unknown", []string{" UNKNOWN ", "Unknown", "unknown\t"}},
		{"203.000.113.8", []string{" 203.000.113.8"}},
		{"203.0.113.9, 10.0.0.1", []string{"203.0.113.9, 10.0.0.1 "}},
		{"203.0.113.9:4711", []string{"  203.0.113.9:4711"}},
		{"[2001:DB8::1]:443", []string{"[2001:db8::1]:443"}},
		{"-", []string{" - "}},
	} {
		for i, u := range []string{"alice", "bob", "carol"} {
			mustFail(t, s.post("/loginshare/user", form("username", fmt.Sprintf("%s-%d-%d", u, k, i), "password", "wrong", "ipaddress", tc.text)), 200, DefaultMessageInvalid)
		}
		calls := fakeCount(name)
		for _, ip := range append([]string{tc.text}, tc.variants...) {
			r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", ip))
			if r.Doc.Result != "0" {
				t.Errorf("ipaddress %q after 3 failures from %q (per_ip 3): not banned, logged in", ip, tc.text)
			}
		}
		if n := fakeCount(name) - calls; n != 0 {
			t.Errorf("ipaddress %q: %d logins during its ban reached the backend", tc.text, n)
		}
		other := fmt.Sprintf("192.0.2.%d", k+1)
		if r := s.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", other)); r.Doc.Result != "1" {
			t.Errorf("after the failures from %q, a login from %s was refused: %s", tc.text, other, r.Body)
		}
	}
}

// atkRawPost opens a TCP connection to s and sends the request head of a
// form POST to path with a Content-Length of len(body); the body is left to
// the caller.
func atkRawPost(t *testing.T, s *site, path string, contentLength int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: SWIFT_LoginShare\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", path, s.port, contentLength)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// Point 6: a body sent one byte every two seconds was neither answered nor
// closed within 15 s with `timeout 3s`: Caddy's own read_idle_timeout is
// reset by every byte. The body must be read under the request's deadline
// (start + timeout) and the expiry answered with 408, the Kayako failure
// document and Connection: close, outcome bad_request.
func TestSlowBodyIsAnsweredAtTheRequestDeadline(t *testing.T) {
	const name = "atk-slow-body"
	s := startCaddy(t, "", fmt.Sprintf(`loginshare {
	timeout 3s
	%s
	throttle off
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, atkFast, name))
	body := form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.80").Encode()

	t.Run("trickled body", func(t *testing.T) {
		const bound = 15 * time.Second // five times the 3 s deadline
		calls := fakeCount(name)
		c := atkRawPost(t, s, "/loginshare/user", len(body))
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		go func() { // one byte every two seconds, until the server hangs up
			for i := 0; i < len(body); i++ {
				if _, err := c.Write([]byte{body[i]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Second):
				}
			}
		}()
		_ = c.SetReadDeadline(start.Add(bound))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer within %s to a body trickled at 1 byte / 2 s (timeout 3s): %v", bound, err)
		}
		defer resp.Body.Close()
		answered := time.Since(start)
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		t.Logf("answered after %s: %d %s", answered.Round(time.Millisecond), resp.StatusCode, raw)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
		var doc kayakoDoc
		if err := xml.Unmarshal(raw, &doc); err != nil || doc.Result != "0" || doc.Message == nil || *doc.Message != DefaultMessageInvalid {
			t.Errorf("answer is not the Kayako failure document with the generic message: %v %s", err, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if !resp.Close && !strings.EqualFold(resp.Header.Get("Connection"), "close") {
			t.Errorf("no Connection: close (headers %v)", resp.Header)
		}
		// The server hangs up: nothing more arrives and the read ends.
		if n, err := br.ReadByte(); err == nil {
			t.Errorf("the connection stays open after the 408 (read %q)", n)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the connection was not closed within %s", bound)
		}
		if answered < 2*time.Second {
			t.Errorf("answered after %s, before the 3 s deadline expired", answered)
		}
		if n := fakeCount(name) - calls; n != 0 {
			t.Errorf("the unfinished body reached the backend %d times", n)
		}
	})

	t.Run("slow body that completes in time is still a login", func(t *testing.T) {
		c := atkRawPost(t, s, "/loginshare/user", len(body))
		third := len(body) / 3
		for _, part := range []string{body[:third], body[third : 2*third], body[2*third:]} {
			if _, err := io.WriteString(c, part); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
		}
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var doc kayakoDoc
		if resp.StatusCode != 200 || xml.Unmarshal(raw, &doc) != nil || doc.Result != "1" {
			t.Errorf("a body sent in three parts within 1.2 s (timeout 3s): %d %s", resp.StatusCode, raw)
		}
	})

	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	found := false
	for _, l := range auditLines(t, s.logFile) {
		lines = append(lines, fmt.Sprintf("%v/%v", l["outcome"], l["status"]))
		if l["outcome"] == "bad_request" && l["status"] == float64(http.StatusRequestTimeout) {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit line with outcome bad_request and status 408 for the trickled body (outcome/status: %v)", lines)
	}
}
