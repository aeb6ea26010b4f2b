package kayako

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Endpoint is the Kayako login that sent the request: each reads its own
// document.
type Endpoint int

const (
	// User is the support-centre login (Kayako's "User LoginShare URL"),
	// answered with a <user> document.
	User Endpoint = iota + 1
	// Staff is the staff login (Staff CP, Admin CP, desktop app, staff API),
	// answered with a <staff> document.
	Staff
)

func (e Endpoint) String() string {
	switch e {
	case User:
		return "user"
	case Staff:
		return "staff"
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// Outcome is what the login comes to.
type Outcome string

const (
	// Login: Kayako logs the person in.
	Login Outcome = "login"
	// Refused: the endpoint said no (result 0); Kayako shows its message.
	Refused Outcome = "refused"
	// Broken: Kayako cannot use the reply and shows one of its own errors.
	Broken Outcome = "broken"
)

// Code names the branch of Kayako's client a reply takes. The strings are
// stable (they appear in `caddy loginshare check --json`).
type Code string

const (
	CodeSuccess      Code = "success"          // logged in
	CodeFailure      Code = "failure"          // result 0
	CodeEmpty        Code = "invalid_data_1"   // nothing (or "0") received
	CodeNotXML       Code = "invalid_data_2"   // not well-formed XML, or no <result>
	CodeIncomplete   Code = "invalid_data_5"   // result not 0/1, or a required element missing
	CodeNoEmails     Code = "no_emails"        // user: no address passes Kayako's validator
	CodeInvalidGroup Code = "invalid_group"    // empty user group / team title
	CodeException    Code = "kayako_exception" // Kayako throws and shows an error page
)

// What Kayako shows for each error (SWIFT_INVALIDDATA is "Invalid data
// provided").
const (
	ShowsEmpty        = "Invalid data provided: 1"
	ShowsNotXML       = "Invalid data provided: 2"
	ShowsIncomplete   = "Invalid data provided: 5"
	ShowsNoEmails     = "Invalid data provided: No Emails"
	ShowsInvalidGroup = "Invalid data provided: Invalid Group"
	ShowsException    = `an error page ("Invalid data provided": Kayako throws an exception it does not catch)`
)

// Verdict is what Kayako does with one reply.
type Verdict struct {
	Outcome Outcome
	Code    Code
	// Shows is what the person sees: the endpoint's <message> when Refused
	// (possibly empty), Kayako's error when Broken, "" on Login.
	Shows string
	// Reason says why, in plain words, for the administrator.
	Reason string
	// User or Staff is the record Kayako would create or update, as it would
	// store it; set whenever the reply is a complete result-1 document of
	// the endpoint's kind, including when Kayako then stops at No Emails,
	// Invalid Group or an exception.
	User  *UserRecord
	Staff *StaffRecord
	// Notes are what else an administrator should know about this reply.
	Notes []string
}

// UserRecord is the support-centre user a reply describes.
type UserRecord struct {
	// UserGroup is the title Kayako looks up among registered-type user
	// groups (a new user needs it to exist; an existing user is moved to it
	// only when it exists).
	UserGroup string
	FullName  string
	// Emails are the addresses Kayako keeps, lower-cased, in document
	// order: it links the account by them (the last one that belongs to an
	// existing user decides who that is).
	Emails []string
	// Dropped are the addresses Kayako's validator rejects, as written.
	Dropped []string
	// Designation and Phone are updated on an existing user only when not
	// empty.
	Designation, Phone string
	// Organization is looked up by name and created when unknown; only a
	// new user is linked to it. Empty when Kayako ignores it.
	Organization string
	// OrganizationType is "shared" or "restricted", as Kayako would create
	// the organization.
	OrganizationType string
}

// StaffRecord is the staff account a reply describes, as Kayako stores it
// (names, designation and e-mail trimmed, e-mail lower-cased).
type StaffRecord struct {
	// Team is the title a new staff account's team is looked up by; an
	// existing staff member keeps their team whatever it says.
	Team                string
	FirstName, LastName string
	FullName            string // "first last", trimmed
	Designation         string // kept only where the account has none
	Email               string
	MobileNumber        string // kept only where the account has none
	Signature           string // kept only where the account has none
}

// Kayako's column sizes in characters (MySQL cuts longer values, or refuses
// the row in strict mode).
var (
	userColumns  = map[string]int{"fullname": 200, "designation": 255, "phone": 25, "organization": 100}
	staffColumns = map[string]int{"firstname": 100, "lastname": 100, "fullname": 200, "designation": 200, "email": 255, "mobilenumber": 20}
)

// Judge says what Kayako does with a reply to endpoint's request: status
// is the HTTP status (0 when no response arrived; Kayako ignores it, so it
// only adds a note) and body is everything that arrived (nil when nothing
// did).
func Judge(endpoint Endpoint, status int, body []byte) Verdict {
	v := judge(endpoint, body)
	switch {
	case status >= 300 && status < 400:
		v.Notes = append([]string{fmt.Sprintf("HTTP %d is a redirect: Kayako does not follow redirects and reads this reply's own body", status)}, v.Notes...)
	case status >= 400:
		v.Notes = append([]string{fmt.Sprintf("HTTP %d: Kayako ignores the status and reads the body anyway", status)}, v.Notes...)
	}
	return v
}

func judge(endpoint Endpoint, body []byte) Verdict {
	// if (empty($_xmlResult))
	if len(body) == 0 {
		return broken(CodeEmpty, ShowsEmpty, "the reply body is empty")
	}
	if string(body) == "0" {
		return broken(CodeEmpty, ShowsEmpty, `the reply body is "0", which PHP's empty() counts as nothing`)
	}
	// $_XMLObject = @simplexml_load_string(trim($_xmlResult));
	// if (!isset($_XMLObject->result))
	trimmed := []byte(phpTrim(string(body)))
	root, err := parseSimpleXML(trimmed)
	if err != nil {
		v := broken(CodeNotXML, ShowsNotXML, notXMLReason(trimmed, err))
		if errors.Is(err, errUnsupported) {
			v.Notes = append(v.Notes, "this check does not model that part of XML (it reads UTF-8, ISO-8859-1, ISO-8859-15, windows-1252 and US-ASCII, and DOCTYPE entities with plain text values); Kayako's libxml2 may read the document, so the verdict may differ: answer in UTF-8 without a DOCTYPE")
		}
		return v
	}
	var notes []string
	if root.prefix != "" || root.local != "loginshare" {
		notes = append(notes, fmt.Sprintf("the root element is <%s>, not <loginshare>; Kayako does not check it", qualified(root)))
	}
	resultEl := root.child("result")
	if resultEl == nil {
		reason := fmt.Sprintf("the document has no <result> element under its root <%s>%s", qualified(root), lookalike(root, "result"))
		if strings.EqualFold(root.local, "html") {
			reason = "the reply is an HTML page, not a LoginShare document: the URL reaches a web page or another application, not the LoginShare endpoint"
		}
		v := broken(CodeNotXML, ShowsNotXML, reason)
		v.Notes = notes
		return v
	}
	if len(root.all("result")) > 1 {
		notes = append(notes, "the document has several <result> elements; Kayako reads the first")
	}
	resultText := resultEl.String()
	result := phpInt(resultText)
	if resultText != "0" && resultText != "1" && (result == 0 || result == 1) {
		notes = append(notes, fmt.Sprintf("<result> is %q, which Kayako reads as %d; write exactly 0 or 1", resultText, result))
	}
	message := root.child("message").String()

	if result == 0 {
		v := Verdict{Outcome: Refused, Code: CodeFailure, Shows: message, Reason: "the endpoint refused the login (result 0)"}
		if root.child("message") == nil {
			v.Reason += " without a <message>: Kayako shows an empty error"
		} else if strings.TrimSpace(message) == "" {
			v.Reason += " with an empty <message>: Kayako shows an empty error"
		}
		if endpoint == Staff {
			notes = append(notes, `the Staff CP shows this message only while its login lockout is on; otherwise it shows its own "invalid username or password" text`)
			if strings.Contains(message, "%") {
				notes = append(notes, `the message contains "%": with login lockout on, the Staff CP uses it as a printf format, so the person sees it mangled`)
			}
		}
		v.Notes = notes
		return v
	}
	var v Verdict
	if result != 1 {
		v = broken(CodeIncomplete, ShowsIncomplete, fmt.Sprintf("<result> is %q, which Kayako reads as %d: only 0 (refused) and 1 (logged in) are valid", resultText, result))
	} else if endpoint == Staff {
		v = judgeStaff(root)
	} else {
		v = judgeUser(root)
	}
	v.Notes = append(notes, v.Notes...)
	return v
}

func broken(c Code, shows, reason string) Verdict {
	return Verdict{Outcome: Broken, Code: c, Shows: shows, Reason: reason}
}

func qualified(e *element) string {
	if e.prefix == "" {
		return e.local
	}
	return e.prefix + ":" + e.local
}

// lookalike explains why an element that looks like name is not it.
func lookalike(parent *element, name string) string {
	for _, c := range parent.children {
		switch {
		case c.prefix == "" && strings.EqualFold(c.local, name):
			return fmt.Sprintf(" (there is a <%s>: element names are case-sensitive)", c.local)
		case c.prefix != "" && c.local == name:
			return fmt.Sprintf(" (there is a <%s>: Kayako does not see prefixed elements)", qualified(c))
		}
	}
	return ""
}

func notXMLReason(doc []byte, err error) string {
	head := bytes.ToLower(doc[:min(len(doc), 512)])
	switch {
	case bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html")) || bytes.Contains(head, []byte("<body")):
		return "the reply is an HTML page, not a LoginShare document: the URL reaches a web page or another application, not the LoginShare endpoint"
	case len(doc) > 0 && doc[0] != '<' && !bytes.HasPrefix(doc, []byte("\xEF\xBB\xBF<")):
		return "the reply is not XML (it does not start with '<'): " + err.Error()
	}
	return "the reply is not well-formed XML, so Kayako's parser returns nothing: " + err.Error()
}

func judgeUser(root *element) Verdict {
	user := root.child("user")
	// isset($xml->user->usergroup) && isset(...->fullname) && isset(...->emails)
	var missing []string
	for _, name := range []string{"usergroup", "fullname", "emails"} {
		if user.child(name) == nil {
			missing = append(missing, "<"+name+">")
		}
	}
	if user == nil || len(missing) > 0 {
		return broken(CodeIncomplete, ShowsIncomplete, incomplete(root, user, "user", missing,
			"a user document needs <usergroup>, <fullname> and <emails> (with <email> children)"))
	}
	rec := &UserRecord{
		UserGroup:   user.child("usergroup").String(),
		FullName:    user.child("fullname").String(),
		Designation: user.child("designation").String(),
		Phone:       user.child("phone").String(),
	}
	var notes []string
	emailEls := user.child("emails").all("email")
	for _, e := range emailEls {
		addr := e.String()
		if ValidEmail(addr) {
			rec.Emails = append(rec.Emails, asciiLower(addr))
		} else {
			rec.Dropped = append(rec.Dropped, addr)
		}
	}
	if len(rec.Dropped) > 0 && len(rec.Emails) > 0 {
		notes = append(notes, "Kayako's validator drops "+quoteList(rec.Dropped)+emailHint(rec.Dropped))
	}
	// isset($xml->user->organization) && !empty($xml->user->organization)
	if org := user.child("organization"); org != nil && !simpleXMLEmpty(org) {
		rec.Organization = org.String()
		rec.OrganizationType = "restricted"
		if asciiLower(user.child("organizationtype").String()) == "shared" {
			rec.OrganizationType = "shared"
		}
	}
	notes = append(notes, titleNote("usergroup", rec.UserGroup)...)
	notes = append(notes, columnNotes(userColumns, map[string]string{
		"fullname": rec.FullName, "designation": rec.Designation, "phone": rec.Phone, "organization": rec.Organization})...)
	v := Verdict{Outcome: Login, Code: CodeSuccess, Reason: "a complete user document with result 1", User: rec}
	switch {
	case len(rec.Emails) == 0:
		v.Outcome, v.Code, v.Shows = Broken, CodeNoEmails, ShowsNoEmails
		if len(emailEls) == 0 {
			v.Reason = "<emails> holds no <email>: Kayako needs at least one valid address to link the account"
		} else {
			v.Reason = "no address passes Kayako's e-mail validator: " + quoteList(rec.Dropped) + emailHint(rec.Dropped)
		}
	case strings.TrimRight(rec.UserGroup, " ") == "":
		// RetrieveOnTitle('') finds nothing (MySQL ignores trailing spaces).
		v.Outcome, v.Code, v.Shows = Broken, CodeInvalidGroup, ShowsInvalidGroup
		v.Reason = "<usergroup> is empty: Kayako cannot create a new user without a user group (an existing user still logs in, without any update)"
	case phpTrim(rec.FullName) == "":
		v.Outcome, v.Code, v.Shows = Broken, CodeException, ShowsException
		v.Reason = "<fullname> is empty: Kayako throws while updating or creating the user"
	}
	v.Notes = notes
	return v
}

func judgeStaff(root *element) Verdict {
	staff := root.child("staff")
	names := []string{"team", "firstname", "lastname", "designation", "email", "mobilenumber", "signature"}
	var missing []string
	for _, name := range names {
		if staff.child(name) == nil {
			missing = append(missing, "<"+name+">")
		}
	}
	if staff == nil || len(missing) > 0 {
		return broken(CodeIncomplete, ShowsIncomplete, incomplete(root, staff, "staff", missing,
			"a staff document needs all seven of <team>, <firstname>, <lastname>, <designation>, <email>, <mobilenumber> and <signature>, empty ones too"))
	}
	raw := map[string]string{}
	for _, name := range names {
		raw[name] = staff.child(name).String()
	}
	rec := &StaffRecord{
		Team:         raw["team"],
		FirstName:    phpTrim(raw["firstname"]),
		LastName:     phpTrim(raw["lastname"]),
		FullName:     phpTrim(raw["firstname"] + " " + raw["lastname"]),
		Designation:  phpTrim(raw["designation"]),
		Email:        asciiLower(phpTrim(raw["email"])),
		MobileNumber: raw["mobilenumber"],
		Signature:    raw["signature"],
	}
	var notes []string
	for _, name := range []string{"firstname", "lastname", "designation", "email"} {
		if v := raw[name]; v != phpTrim(v) && phpTrim(v) != "" {
			notes = append(notes, fmt.Sprintf("<%s> has white space around it; Kayako trims it", name))
		}
	}
	notes = append(notes, titleNote("team", rec.Team)...)
	notes = append(notes, columnNotes(staffColumns, map[string]string{
		"firstname": rec.FirstName, "lastname": rec.LastName, "fullname": rec.FullName,
		"designation": rec.Designation, "email": rec.Email, "mobilenumber": rec.MobileNumber})...)
	v := Verdict{Outcome: Login, Code: CodeSuccess, Reason: "a complete staff document with result 1", Staff: rec}
	switch {
	case strings.TrimRight(rec.Team, " ") == "":
		v.Outcome, v.Code, v.Shows = Broken, CodeInvalidGroup, ShowsInvalidGroup
		v.Reason = "<team> is empty: Kayako cannot create a new staff account without a team (an existing staff member keeps their team and logs in)"
	case phpEmpty(raw["email"]):
		v.Outcome, v.Code, v.Shows = Broken, CodeException, ShowsException
		v.Reason = "<email> is empty: Kayako throws while creating or updating the staff account"
	case phpEmpty(raw["firstname"]):
		v.Outcome, v.Code, v.Shows = Broken, CodeException, ShowsException
		v.Reason = "<firstname> is empty: Kayako throws while updating an existing staff account (a new one is created only when <lastname> is set)"
	case rec.Email == "":
		notes = append(notes, "<email> is blank: Kayako stores an empty e-mail address for this staff account")
	}
	v.Notes = notes
	return v
}

// incomplete explains a result-1 document that lacks what Kayako requires.
func incomplete(root, person *element, kind string, missing []string, need string) string {
	if person == nil {
		other := map[string]string{"user": "staff", "staff": "user"}[kind]
		if root.child(other) != nil {
			return fmt.Sprintf("the reply says result 1 but carries a <%s> document where Kayako reads <%s>: the %s URL points at a %s endpoint", other, kind, kind, other)
		}
		return fmt.Sprintf("the reply says result 1 but has no <%s> element%s; %s", kind, lookalike(root, kind), need)
	}
	return fmt.Sprintf("the reply says result 1 but <%s> has no %s; %s", kind, strings.Join(missing, ", "), need)
}

// simpleXMLEmpty is PHP's empty() on a SimpleXML element: true when it has
// no child node at all, or only one run of text that is "0".
func simpleXMLEmpty(e *element) bool {
	return e.nodes == 0 || e.nodes == 1 && e.lastText && e.String() == "0"
}

func titleNote(name, title string) []string {
	if title != "" && strings.TrimSpace(title) != strings.TrimRight(title, " ") {
		return []string{fmt.Sprintf("<%s> %q has white space before it or line breaks around it: Kayako looks the title up exactly (only trailing spaces are ignored), so it will not match a title without them", name, title)}
	}
	return nil
}

func columnNotes(limits map[string]int, values map[string]string) []string {
	var notes []string
	for _, name := range []string{"firstname", "lastname", "fullname", "designation", "email", "phone", "mobilenumber", "organization"} {
		limit, ok := limits[name]
		if !ok {
			continue
		}
		if n := utf8.RuneCountInString(values[name]); n > limit {
			notes = append(notes, fmt.Sprintf("<%s> has %d characters; Kayako's column holds %d (MySQL cuts the rest, or refuses the row in strict mode)", name, n, limit))
		}
	}
	return notes
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// emailHint names the usual reason an address is dropped.
func emailHint(addrs []string) string {
	for _, a := range addrs {
		switch {
		case a == "":
			return " (an empty <email>)"
		case strings.TrimSpace(a) != a:
			return " (white space around an address: Kayako does not trim it)"
		}
	}
	for _, a := range addrs {
		for i := 0; i < len(a); i++ {
			if a[i] >= 0x80 {
				return " (Kayako accepts ASCII addresses only)"
			}
		}
	}
	return ""
}
