package kayako_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// The cases follow the protocol reference: §2.1 (how Kayako parses), §2.2
// and §2.3 (the two documents), §3.5 (what the person sees).

const userOK = `<?xml version="1.0" encoding="UTF-8"?>
<loginshare>
  <result>1</result>
  <user>
    <usergroup>Registered</usergroup>
    <fullname>Jane Doe</fullname>
    <designation>Engineer</designation>
    <emails><email>Jane.Doe@Example.com</email><email>not an email</email><email>j.doe@example.org</email></emails>
    <phone>+1 555 0100</phone>
  </user>
</loginshare>`

const staffOK = `<?xml version="1.0" encoding="UTF-8"?>
<loginshare><result>1</result><staff><team>Support</team><firstname>Jane</firstname><lastname>Doe</lastname>
<designation>Engineer</designation><email> Jane.Doe@Example.com </email><mobilenumber></mobilenumber><signature/></staff></loginshare>`

func replace(doc, old, new string) string {
	if !strings.Contains(doc, old) {
		panic("test fixture does not contain " + old)
	}
	return strings.Replace(doc, old, new, 1)
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint kayako.Endpoint
		status   int
		body     string
		outcome  kayako.Outcome
		code     kayako.Code
		shows    string
		reason   string // a part of Verdict.Reason
		note     string // a part of one of Verdict.Notes
	}{
		// §3.5 row 1 / §2.1.1: empty() bodies.
		{name: "empty body", endpoint: kayako.User, status: 200, body: "",
			outcome: kayako.Broken, code: kayako.CodeEmpty, shows: "Invalid data provided: 1", reason: "empty"},
		{name: "the string 0 is empty() too", endpoint: kayako.User, status: 200, body: "0",
			outcome: kayako.Broken, code: kayako.CodeEmpty, shows: "Invalid data provided: 1"},
		{name: "nothing arrived (transport error)", endpoint: kayako.Staff, status: 0, body: "",
			outcome: kayako.Broken, code: kayako.CodeEmpty, shows: "Invalid data provided: 1"},
		{name: "a 404 with an empty body", endpoint: kayako.User, status: 404, body: "",
			outcome: kayako.Broken, code: kayako.CodeEmpty, shows: "Invalid data provided: 1", note: "ignores the status"},
		{name: "a redirect is not followed", endpoint: kayako.User, status: 301, body: "",
			outcome: kayako.Broken, code: kayako.CodeEmpty, note: "does not follow redirects"},

		// §2.1.2–3: trim, parse, isset($xml->result).
		{name: "white space only is not empty() but parses to nothing", endpoint: kayako.User, status: 200, body: " \n\t",
			outcome: kayako.Broken, code: kayako.CodeNotXML, shows: "Invalid data provided: 2"},
		{name: "leading newlines before the declaration are trimmed (SWIFT-943)", endpoint: kayako.User, status: 200,
			body: "\n\r\n\t " + userOK + "\n\n", outcome: kayako.Login, code: kayako.CodeSuccess},
		{name: "an HTML page", endpoint: kayako.User, status: 200, body: "<!DOCTYPE html><html><body>Login</body></html>",
			outcome: kayako.Broken, code: kayako.CodeNotXML, shows: "Invalid data provided: 2", reason: "HTML page"},
		{name: "not XML at all", endpoint: kayako.User, status: 200, body: "result=1",
			outcome: kayako.Broken, code: kayako.CodeNotXML, reason: "not XML"},
		{name: "no result element", endpoint: kayako.User, status: 200, body: "<loginshare><message>x</message></loginshare>",
			outcome: kayako.Broken, code: kayako.CodeNotXML, reason: "no <result>"},
		{name: "element names are case-sensitive", endpoint: kayako.User, status: 200, body: "<loginshare><Result>1</Result></loginshare>",
			outcome: kayako.Broken, code: kayako.CodeNotXML, reason: "case-sensitive"},
		{name: "a prefixed result is invisible", endpoint: kayako.User, status: 200,
			body:    `<ls:loginshare xmlns:ls="urn:x"><ls:result>1</ls:result></ls:loginshare>`,
			outcome: kayako.Broken, code: kayako.CodeNotXML, reason: "prefixed"},
		{name: "a default namespace is seen", endpoint: kayako.User, status: 200,
			body: replace(userOK, "<loginshare>", `<loginshare xmlns="urn:x">`), outcome: kayako.Login},
		{name: "result is a child of the root, not deeper", endpoint: kayako.User, status: 200,
			body: "<loginshare><x><result>1</result></x></loginshare>", outcome: kayako.Broken, code: kayako.CodeNotXML},
		{name: "the root name is not checked", endpoint: kayako.User, status: 200,
			body: strings.ReplaceAll(userOK, "loginshare>", "anything>"), outcome: kayako.Login, note: "not <loginshare>"},
		{name: "an unescaped ampersand", endpoint: kayako.User, status: 200, body: replace(userOK, "Jane Doe", "Tom & Jerry"),
			outcome: kayako.Broken, code: kayako.CodeNotXML, reason: "well-formed"},
		{name: "a control character", endpoint: kayako.User, status: 200, body: replace(userOK, "Jane Doe", "Jane\x01Doe"),
			outcome: kayako.Broken, code: kayako.CodeNotXML},
		{name: "the documentation's declaration typo", endpoint: kayako.User, status: 200,
			body:    replace(userOK, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0"encoding="UTF-8"?>`),
			outcome: kayako.Broken, code: kayako.CodeNotXML},
		{name: "a second root element", endpoint: kayako.User, status: 200, body: userOK + "<x/>",
			outcome: kayako.Broken, code: kayako.CodeNotXML},
		{name: "ISO-8859-1 is decoded", endpoint: kayako.User, status: 200,
			body:    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><loginshare><result>0</result><message>Mot de passe erron\xe9</message></loginshare>",
			outcome: kayako.Refused, code: kayako.CodeFailure, shows: "Mot de passe erroné"},
		{name: "an encoding this check does not read", endpoint: kayako.User, status: 200,
			body: replace(userOK, "UTF-8", "KOI8-R"), outcome: kayako.Broken, code: kayako.CodeNotXML, note: "may differ"},

		// §2.1.4: (int)$xml->result and the message.
		{name: "result 0 shows the message", endpoint: kayako.User, status: 200,
			body:    "<loginshare><result>0</result><message>Nope &amp; never</message></loginshare>",
			outcome: kayako.Refused, code: kayako.CodeFailure, shows: "Nope & never"},
		{name: "result 0 without a message", endpoint: kayako.User, status: 200, body: "<loginshare><result>0</result></loginshare>",
			outcome: kayako.Refused, code: kayako.CodeFailure, shows: "", reason: "without a <message>"},
		{name: "non-numeric result reads as 0", endpoint: kayako.User, status: 200,
			body:    "<loginshare><result>true</result><message>m</message></loginshare>",
			outcome: kayako.Refused, shows: "m", note: `"true", which Kayako reads as 0`},
		{name: "an empty result reads as 0", endpoint: kayako.User, status: 200, body: "<loginshare><result/><message>m</message></loginshare>",
			outcome: kayako.Refused, shows: "m"},
		{name: "result 2", endpoint: kayako.User, status: 200, body: replace(userOK, "<result>1<", "<result>2<"),
			outcome: kayako.Broken, code: kayako.CodeIncomplete, shows: "Invalid data provided: 5", reason: "only 0 (refused) and 1"},
		{name: "result -1", endpoint: kayako.Staff, status: 200, body: replace(staffOK, "<result>1<", "<result>-1<"),
			outcome: kayako.Broken, code: kayako.CodeIncomplete},
		{name: `result " 01" reads as 1`, endpoint: kayako.User, status: 200, body: replace(userOK, "<result>1<", "<result> 01<"),
			outcome: kayako.Login, note: "reads as 1"},
		{name: "the first of several results counts", endpoint: kayako.User, status: 200,
			body:    "<loginshare><result>0</result><result>1</result><message>first</message></loginshare>",
			outcome: kayako.Refused, shows: "first", note: "several <result>"},
		{name: "a staff refusal notes the Staff CP and printf", endpoint: kayako.Staff, status: 200,
			body:    "<loginshare><result>0</result><message>100% wrong</message></loginshare>",
			outcome: kayako.Refused, shows: "100% wrong", note: "printf"},

		// §2.2: the user document.
		{name: "user success", endpoint: kayako.User, status: 200, body: userOK, outcome: kayako.Login, code: kayako.CodeSuccess,
			note: `drops "not an email"`},
		{name: "a 500 with a valid document still logs in", endpoint: kayako.User, status: 500, body: userOK,
			outcome: kayako.Login, note: "HTTP 500: Kayako ignores the status"},
		{name: "user without fullname", endpoint: kayako.User, status: 200, body: replace(userOK, "<fullname>Jane Doe</fullname>", ""),
			outcome: kayako.Broken, code: kayako.CodeIncomplete, reason: "<user> has no <fullname>"},
		{name: "user without emails", endpoint: kayako.User, status: 200,
			body:    replace(userOK, "<emails><email>Jane.Doe@Example.com</email><email>not an email</email><email>j.doe@example.org</email></emails>", ""),
			outcome: kayako.Broken, code: kayako.CodeIncomplete, reason: "<emails>"},
		{name: "a staff document sent to the user URL", endpoint: kayako.User, status: 200, body: staffOK,
			outcome: kayako.Broken, code: kayako.CodeIncomplete, reason: "points at a staff endpoint"},
		{name: "an empty fullname element is present (isset), then Kayako throws", endpoint: kayako.User, status: 200,
			body:    replace(userOK, "<fullname>Jane Doe</fullname>", "<fullname> </fullname>"),
			outcome: kayako.Broken, code: kayako.CodeException, shows: kayako.ShowsException, reason: "<fullname> is empty"},
		{name: "no valid e-mail", endpoint: kayako.User, status: 200,
			body:    replace(userOK, "<email>Jane.Doe@Example.com</email><email>not an email</email><email>j.doe@example.org</email>", "<email>not an email</email><email> jane@example.com </email>"),
			outcome: kayako.Broken, code: kayako.CodeNoEmails, shows: "Invalid data provided: No Emails", reason: "white space around"},
		{name: "emails without email children", endpoint: kayako.User, status: 200,
			body:    replace(userOK, "<email>Jane.Doe@Example.com</email><email>not an email</email><email>j.doe@example.org</email>", ""),
			outcome: kayako.Broken, code: kayako.CodeNoEmails, reason: "holds no <email>"},
		{name: "an empty user group", endpoint: kayako.User, status: 200, body: replace(userOK, "<usergroup>Registered</usergroup>", "<usergroup/>"),
			outcome: kayako.Broken, code: kayako.CodeInvalidGroup, shows: "Invalid data provided: Invalid Group", reason: "existing user still logs in"},
		{name: "a pretty-printed title will not match", endpoint: kayako.User, status: 200,
			body:    replace(userOK, "<usergroup>Registered</usergroup>", "<usergroup>\n      Registered\n    </usergroup>"),
			outcome: kayako.Login, note: "white space before it"},
		{name: "an over-long full name", endpoint: kayako.User, status: 200, body: replace(userOK, "Jane Doe", strings.Repeat("é", 201)),
			outcome: kayako.Login, note: "<fullname> has 201 characters; Kayako's column holds 200"},

		// §2.3: the staff document.
		{name: "staff success", endpoint: kayako.Staff, status: 200, body: staffOK, outcome: kayako.Login, code: kayako.CodeSuccess,
			note: "<email> has white space around it"},
		{name: "staff without signature", endpoint: kayako.Staff, status: 200, body: replace(staffOK, "<signature/>", ""),
			outcome: kayako.Broken, code: kayako.CodeIncomplete, shows: "Invalid data provided: 5", reason: "<staff> has no <signature>"},
		{name: "staff without three children", endpoint: kayako.Staff, status: 200,
			body:    replace(replace(replace(staffOK, "<signature/>", ""), "<mobilenumber></mobilenumber>", ""), "<lastname>Doe</lastname>", ""),
			outcome: kayako.Broken, code: kayako.CodeIncomplete, reason: "<lastname>, <mobilenumber>, <signature>"},
		{name: "a user document sent to the staff URL", endpoint: kayako.Staff, status: 200, body: userOK,
			outcome: kayako.Broken, code: kayako.CodeIncomplete, reason: "points at a user endpoint"},
		{name: "staff with an empty firstname", endpoint: kayako.Staff, status: 200, body: replace(staffOK, "<firstname>Jane</firstname>", "<firstname/>"),
			outcome: kayako.Broken, code: kayako.CodeException, shows: kayako.ShowsException, reason: "<firstname> is empty"},
		{name: `staff firstname "0" is empty() too`, endpoint: kayako.Staff, status: 200, body: replace(staffOK, "<firstname>Jane</firstname>", "<firstname>0</firstname>"),
			outcome: kayako.Broken, code: kayako.CodeException},
		{name: "staff with an empty email", endpoint: kayako.Staff, status: 200, body: replace(staffOK, "<email> Jane.Doe@Example.com </email>", "<email></email>"),
			outcome: kayako.Broken, code: kayako.CodeException, reason: "<email> is empty"},
		{name: "staff with an empty team", endpoint: kayako.Staff, status: 200, body: replace(staffOK, "<team>Support</team>", "<team></team>"),
			outcome: kayako.Broken, code: kayako.CodeInvalidGroup, shows: "Invalid data provided: Invalid Group"},
		{name: "an over-long mobile number", endpoint: kayako.Staff, status: 200,
			body:    replace(staffOK, "<mobilenumber></mobilenumber>", "<mobilenumber>"+strings.Repeat("9", 21)+"</mobilenumber>"),
			outcome: kayako.Login, note: "<mobilenumber> has 21 characters; Kayako's column holds 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := kayako.Judge(tc.endpoint, tc.status, []byte(tc.body))
			if v.Outcome != tc.outcome {
				t.Errorf("outcome %q, want %q (%+v)", v.Outcome, tc.outcome, v)
			}
			if tc.code != "" && v.Code != tc.code {
				t.Errorf("code %q, want %q (%+v)", v.Code, tc.code, v)
			}
			if (tc.shows != "" || tc.outcome == kayako.Refused) && v.Shows != tc.shows {
				t.Errorf("shows %q, want %q", v.Shows, tc.shows)
			}
			if tc.outcome == kayako.Login && v.Shows != "" {
				t.Errorf("a login shows %q", v.Shows)
			}
			if !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", v.Reason, tc.reason)
			}
			if tc.note != "" && !strings.Contains(strings.Join(v.Notes, "\n"), tc.note) {
				t.Errorf("no note contains %q: %q", tc.note, v.Notes)
			}
			if v.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

// The records are what Kayako stores: e-mails filtered and lower-cased,
// staff names and e-mail trimmed.
func TestJudgeRecords(t *testing.T) {
	v := kayako.Judge(kayako.User, 200, []byte(userOK))
	want := &kayako.UserRecord{UserGroup: "Registered", FullName: "Jane Doe", Designation: "Engineer", Phone: "+1 555 0100",
		Emails: []string{"jane.doe@example.com", "j.doe@example.org"}, Dropped: []string{"not an email"}}
	if !reflect.DeepEqual(v.User, want) || v.Staff != nil {
		t.Errorf("user record %+v, want %+v", v.User, want)
	}

	v = kayako.Judge(kayako.Staff, 200, []byte(staffOK))
	wantStaff := &kayako.StaffRecord{Team: "Support", FirstName: "Jane", LastName: "Doe", FullName: "Jane Doe",
		Designation: "Engineer", Email: "jane.doe@example.com"}
	if !reflect.DeepEqual(v.Staff, wantStaff) || v.User != nil {
		t.Errorf("staff record %+v, want %+v", v.Staff, wantStaff)
	}

	// Organization: used when not empty(); "shared" compared lower-cased.
	for _, tc := range []struct{ xml, org, typ string }{
		{"<organization>Acme Ltd</organization><organizationtype>Shared</organizationtype>", "Acme Ltd", "shared"},
		{"<organization>Acme Ltd</organization><organizationtype> shared</organizationtype>", "Acme Ltd", "restricted"},
		{"<organization>Acme Ltd</organization>", "Acme Ltd", "restricted"},
		{"<organization>0</organization>", "", ""},
		{"<organization/>", "", ""},
	} {
		v := kayako.Judge(kayako.User, 200, []byte(replace(userOK, "<phone>", tc.xml+"<phone>")))
		if v.User == nil || v.User.Organization != tc.org || v.User.OrganizationType != tc.typ {
			t.Errorf("%s: %+v", tc.xml, v.User)
		}
	}

	// A refusal or a broken document carries no record.
	for _, body := range []string{"<loginshare><result>0</result><message>m</message></loginshare>", "", "<x/>"} {
		if v := kayako.Judge(kayako.User, 200, []byte(body)); v.User != nil || v.Staff != nil {
			t.Errorf("%q: record %+v %+v", body, v.User, v.Staff)
		}
	}
}

// The status never changes the verdict (§1.1: Kayako ignores it).
func TestJudgeIgnoresTheStatus(t *testing.T) {
	for _, body := range []string{userOK, "", "<loginshare><result>0</result><message>m</message></loginshare>", "<html/>"} {
		base := kayako.Judge(kayako.User, 200, []byte(body))
		for _, status := range []int{0, 201, 302, 404, 500, 503} {
			v := kayako.Judge(kayako.User, status, []byte(body))
			if v.Outcome != base.Outcome || v.Code != base.Code || v.Shows != base.Shows {
				t.Errorf("%q with %d: %+v, with 200: %+v", body, status, v, base)
			}
		}
	}
}
