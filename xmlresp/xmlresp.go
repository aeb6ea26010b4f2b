// Package xmlresp writes the XML documents Kayako's LoginShare client parses:
// a user or staff success document and a failure document.
//
// Kayako trims the body and reads it with PHP SimpleXML (libxml2): a character
// XML 1.0 forbids, an unescaped '&' or '<', or a missing required child turns
// a login into "Invalid data provided". So every text is sanitised (Sanitize),
// stripped of surrounding white space and cut to its Kayako column (Truncate)
// before it is escaped, and a success document whose required children would
// be empty is refused with ErrIncomplete instead of being written.
package xmlresp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ContentType is the Content-Type of every document. Kayako ignores it; it is
// there for people and tools looking at the endpoint.
const ContentType = "text/xml; charset=utf-8"

// Column limits, in runes (Unicode code points), of the Kayako columns each
// text ends up in; longer texts are truncated (see Truncate). EmailMax is in
// bytes and an address longer than it is dropped, never cut.
const (
	// UserGroupMax limits <usergroup>: the title column of Kayako's user groups.
	UserGroupMax = 255
	// FullNameMax limits the user's <fullname> (users.fullname).
	FullNameMax = 200
	// UserDesignationMax limits the user's <designation> (users.userdesignation).
	UserDesignationMax = 255
	// PhoneMax limits <phone> (users.phone).
	PhoneMax = 25
	// OrganizationMax limits <organization> (userorganizations.organizationname).
	OrganizationMax = 100
	// TeamMax limits <team>: the title column of Kayako's staff teams.
	TeamMax = 255
	// FirstNameMax limits <firstname> (staff.firstname).
	FirstNameMax = 100
	// LastNameMax limits <lastname> (staff.lastname).
	LastNameMax = 100
	// StaffFullNameMax is staff.fullname, which Kayako builds as
	// firstname + " " + lastname: the last name is cut further when both
	// names together would not fit.
	StaffFullNameMax = 200
	// StaffDesignationMax limits the staff <designation> (staff.designation).
	StaffDesignationMax = 200
	// MobileMax limits <mobilenumber> (staff.mobilenumber).
	MobileMax = 20
	// SignatureMax limits <signature>. Kayako keeps signatures in a MySQL
	// TEXT column (65,535 bytes); 16,383 runes fit even if every one takes
	// four bytes.
	SignatureMax = 16383
	// EmailMax is the longest e-mail address, in bytes, that is sent.
	EmailMax = 255
	// MessageMax limits the failure <message>, which Kayako shows to the
	// person logging in.
	MessageMax = 500
)

// SetHeaders sets Content-Type (ContentType), Cache-Control: no-store and
// X-Content-Type-Options: nosniff on h.
func SetHeaders(h http.Header) {
	// As three h.Set calls, with one allocation instead of three; each
	// value's capacity ends at its own element, so an append to one header
	// never overwrites the next.
	v := make([]string, 3)
	v[0], v[1], v[2] = ContentType, "no-store", "nosniff"
	h["Content-Type"] = v[0:1:1]
	h["Cache-Control"] = v[1:2:2]
	h["X-Content-Type-Options"] = v[2:3:3]
}

// ErrIncomplete is wrapped by UserDocument and StaffDocument when the
// sanitised data would give Kayako a success document it rejects or throws
// on: an empty usergroup or team, an empty fullname or firstname, or no valid
// e-mail address. The wrapping error names the field, never its value.
var ErrIncomplete = errors.New("xmlresp: incomplete Kayako document")

var (
	errNoUserGroup = fmt.Errorf("%w: usergroup is empty", ErrIncomplete)
	errNoFullName  = fmt.Errorf("%w: fullname is empty", ErrIncomplete)
	errNoEmails    = fmt.Errorf("%w: no valid e-mail address", ErrIncomplete)
	errNoTeam      = fmt.Errorf("%w: team is empty", ErrIncomplete)
	errNoFirstName = fmt.Errorf("%w: firstname is empty", ErrIncomplete)
	errNoEmail     = fmt.Errorf("%w: email is not a valid e-mail address", ErrIncomplete)
)

// User is the data of a user success document. Every text is sanitised,
// trimmed and truncated to its column limit before it is written.
type User struct {
	// UserGroup is the title of a registered-type Kayako user group; required.
	UserGroup string
	// FullName is the person's name; required.
	FullName string
	// Designation is the job title; omitted when empty.
	Designation string
	// Phone is omitted when empty.
	Phone string
	// Organization is used by Kayako only when it creates the user; omitted
	// when empty.
	Organization string
	// OrganizationType is "", "shared" or "restricted" (exactly; anything
	// else is omitted, and Kayako then treats the organisation as
	// restricted).
	OrganizationType string
	// Emails are filtered by CleanEmails; at least one must remain. Kayako
	// links the login to an existing user by these addresses.
	Emails []string
}

// Staff is the data of a staff success document. Every text is sanitised,
// trimmed and truncated to its column limit before it is written; all seven
// children are always present because Kayako requires each of them.
type Staff struct {
	// Team is the title of an existing Kayako staff team; required.
	Team string
	// FirstName is required.
	FirstName string
	// LastName may be empty.
	LastName string
	// Designation may be empty.
	Designation string
	// Email is a single address and must pass ValidEmail (after trimming);
	// pick the first of CleanEmails.
	Email string
	// MobileNumber may be empty.
	MobileNumber string
	// Signature may be empty.
	Signature string
}

const (
	header     = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	resultOK   = "<loginshare>\n  <result>1</result>\n"
	resultFail = "<loginshare>\n  <result>0</result>\n"
	footer     = "</loginshare>\n"
)

// writer builds one document in a buffer sized up front, so a document costs
// one allocation.
type writer struct{ b []byte }

// elemLen is the size of element name with escaped text s at the given indent.
func elemLen(indent int, name, s string) int {
	return indent + 2*len(name) + 5 + escapedLen(s) + 1
}

// elem writes <name>s</name> on its own line.
func (w *writer) elem(indent int, name, s string) {
	w.b = append(w.b, "      "[:indent]...)
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
	w.b = appendEscaped(w.b, s)
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ">\n"...)
}

// raw writes s unescaped.
func (w *writer) raw(s string) { w.b = append(w.b, s...) }

// UserDocument returns the user success document for u:
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<loginshare>
//	  <result>1</result>
//	  <user>
//	    <usergroup>…</usergroup>
//	    <fullname>…</fullname>
//	    <designation>…</designation>            (when not empty)
//	    <organization>…</organization>          (when not empty)
//	    <organizationtype>…</organizationtype>  (when shared or restricted)
//	    <emails>
//	      <email>…</email>                      (one per clean address)
//	    </emails>
//	    <phone>…</phone>                        (when not empty)
//	  </user>
//	</loginshare>
//
// The error wraps ErrIncomplete when usergroup or fullname is empty after
// cleaning or no e-mail address is valid.
func UserDocument(u User) ([]byte, error) {
	group := clean(u.UserGroup, UserGroupMax)
	if group == "" {
		return nil, errNoUserGroup
	}
	name := clean(u.FullName, FullNameMax)
	if name == "" {
		return nil, errNoFullName
	}
	var buf [8]string
	emails := cleanEmails(buf[:0], u.Emails)
	if len(emails) == 0 {
		return nil, errNoEmails
	}
	designation := clean(u.Designation, UserDesignationMax)
	phone := clean(u.Phone, PhoneMax)
	org := clean(u.Organization, OrganizationMax)
	orgType := u.OrganizationType
	if orgType != "shared" && orgType != "restricted" {
		orgType = ""
	}

	n := len(header) + len(resultOK) + len("  <user>\n") + elemLen(4, "usergroup", group) +
		elemLen(4, "fullname", name) + len("    <emails>\n    </emails>\n  </user>\n") + len(footer)
	for _, e := range emails {
		n += elemLen(6, "email", e)
	}
	if designation != "" {
		n += elemLen(4, "designation", designation)
	}
	if org != "" {
		n += elemLen(4, "organization", org)
	}
	if orgType != "" {
		n += elemLen(4, "organizationtype", orgType)
	}
	if phone != "" {
		n += elemLen(4, "phone", phone)
	}

	w := writer{b: make([]byte, 0, n)}
	w.raw(header + resultOK + "  <user>\n")
	w.elem(4, "usergroup", group)
	w.elem(4, "fullname", name)
	if designation != "" {
		w.elem(4, "designation", designation)
	}
	if org != "" {
		w.elem(4, "organization", org)
	}
	if orgType != "" {
		w.elem(4, "organizationtype", orgType)
	}
	w.raw("    <emails>\n")
	for _, e := range emails {
		w.elem(6, "email", e)
	}
	w.raw("    </emails>\n")
	if phone != "" {
		w.elem(4, "phone", phone)
	}
	w.raw("  </user>\n" + footer)
	return w.b, nil
}

// StaffDocument returns the staff success document for s, with all seven
// children present (empty ones as <name></name>):
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<loginshare>
//	  <result>1</result>
//	  <staff>
//	    <team>…</team>
//	    <firstname>…</firstname>
//	    <lastname>…</lastname>
//	    <designation>…</designation>
//	    <email>…</email>
//	    <mobilenumber>…</mobilenumber>
//	    <signature>…</signature>
//	  </staff>
//	</loginshare>
//
// The last name is cut to LastNameMax runes and, further, so that
// firstname + " " + lastname fits StaffFullNameMax. The error wraps
// ErrIncomplete when team or firstname is empty after cleaning or the e-mail
// address is not valid.
func StaffDocument(s Staff) ([]byte, error) {
	team := clean(s.Team, TeamMax)
	if team == "" {
		return nil, errNoTeam
	}
	first := clean(s.FirstName, FirstNameMax)
	if first == "" {
		return nil, errNoFirstName
	}
	email := strings.TrimSpace(s.Email)
	if !ValidEmail(email) {
		return nil, errNoEmail
	}
	last := clean(s.LastName, min(LastNameMax, StaffFullNameMax-1-utf8.RuneCountInString(first)))
	designation := clean(s.Designation, StaffDesignationMax)
	mobile := clean(s.MobileNumber, MobileMax)
	signature := clean(s.Signature, SignatureMax)

	n := len(header) + len(resultOK) + len("  <staff>\n  </staff>\n") + len(footer) +
		elemLen(4, "team", team) + elemLen(4, "firstname", first) + elemLen(4, "lastname", last) +
		elemLen(4, "designation", designation) + elemLen(4, "email", email) +
		elemLen(4, "mobilenumber", mobile) + elemLen(4, "signature", signature)
	w := writer{b: make([]byte, 0, n)}
	w.raw(header + resultOK + "  <staff>\n")
	w.elem(4, "team", team)
	w.elem(4, "firstname", first)
	w.elem(4, "lastname", last)
	w.elem(4, "designation", designation)
	w.elem(4, "email", email)
	w.elem(4, "mobilenumber", mobile)
	w.elem(4, "signature", signature)
	w.raw("  </staff>\n" + footer)
	return w.b, nil
}

// DefaultFailureMessage replaces a failure message that is empty after
// cleaning: Kayako shows the message to the person, and an empty one would
// leave them with a blank error.
const DefaultFailureMessage = "Login failed"

// FailureDocument returns the failure document, which carries no person
// data:
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<loginshare>
//	  <result>0</result>
//	  <message>…</message>
//	</loginshare>
//
// The message is sanitised, loses every '%' (the staff panel may use it as a
// sprintf format), is trimmed and truncated to MessageMax runes; when nothing
// is left, DefaultFailureMessage is sent.
func FailureDocument(message string) []byte {
	message = Sanitize(message)
	if strings.IndexByte(message, '%') >= 0 {
		message = strings.ReplaceAll(message, "%", "")
	}
	message = clean(message, MessageMax)
	if message == "" {
		message = DefaultFailureMessage
	}
	w := writer{b: make([]byte, 0, len(header)+len(resultFail)+elemLen(2, "message", message)+len(footer))}
	w.raw(header + resultFail)
	w.elem(2, "message", message)
	w.raw(footer)
	return w.b
}
