package loginsharecmd

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// report is everything `check` found out, ready to print.
type report struct {
	opts         checkOptions
	verdict      kayako.Verdict
	status       int // 0: no response
	statusText   string
	location     string
	elapsed      time.Duration
	transportErr error
	cert         certStatus
	reply        []byte
	truncated    bool

	// Set by scrub.
	reason  string
	notes   []string
	errText string
	excerpt string
}

const mask = "********"

// scrub derives what is printed and removes the password from all of it:
// an endpoint may echo the password back (a debugging PHP script does), and
// it must appear in no output.
func (r *report) scrub(password string) {
	r.reason = r.verdict.Reason
	if r.transportErr != nil {
		r.errText = describeTransportError(r.transportErr, r.opts.timeout)
		if len(r.reply) == 0 {
			r.reason = "Kayako would receive nothing: " + r.errText
		}
	}
	r.notes = append(r.notes, r.verdict.Notes...)
	r.notes = append(r.notes, r.commandNotes()...)

	forms := passwordForms(password)
	clean := func(s string) string {
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, mask)
		}
		return s
	}
	if r.verdict.Outcome == kayako.Broken && len(r.reply) > 0 {
		// Cleaned whole before it is cut and quoted, so that neither can
		// leave a piece of the password.
		const n = 300
		head := clean(string(r.reply))
		r.excerpt = strconv.Quote(head[:min(n, len(head))])
		if len(head) > n {
			r.excerpt += fmt.Sprintf(" … (%d bytes in all)", len(r.reply))
		}
	}
	r.reason, r.errText, r.location = clean(r.reason), clean(r.errText), clean(r.location)
	for i := range r.notes {
		r.notes[i] = clean(r.notes[i])
	}
	v := &r.verdict
	v.Shows, v.Reason = clean(v.Shows), clean(v.Reason)
	v.Notes = nil // printed from r.notes
	if u := v.User; u != nil {
		c := *u
		c.UserGroup, c.FullName, c.Designation, c.Phone = clean(c.UserGroup), clean(c.FullName), clean(c.Designation), clean(c.Phone)
		c.Organization, c.OrganizationType = clean(c.Organization), clean(c.OrganizationType)
		c.Emails, c.Dropped = cleanAll(c.Emails, clean), cleanAll(c.Dropped, clean)
		v.User = &c
	}
	if s := v.Staff; s != nil {
		c := *s
		for _, p := range []*string{&c.Team, &c.FirstName, &c.LastName, &c.FullName, &c.Designation, &c.Email, &c.MobileNumber, &c.Signature} {
			*p = clean(*p)
		}
		v.Staff = &c
	}
	r.reply = nil
}

func cleanAll(in []string, clean func(string) string) []string {
	var out []string
	for _, s := range in {
		out = append(out, clean(s))
	}
	return out
}

// passwordForms are the spellings of the password an answer or an error may
// carry, longest first.
func passwordForms(pw string) []string {
	xmlEsc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(pw)
	quoted := strconv.Quote(pw)
	set := map[string]bool{}
	for _, f := range []string{pw, phpURLEncode(pw), url.QueryEscape(pw), url.PathEscape(pw), html.EscapeString(pw), xmlEsc, quoted[1 : len(quoted)-1]} {
		if f != "" {
			set[f] = true
		}
	}
	var forms []string
	for f := range set {
		forms = append(forms, f)
	}
	sort.Slice(forms, func(i, j int) bool {
		return len(forms[i]) > len(forms[j]) || len(forms[i]) == len(forms[j]) && forms[i] < forms[j]
	})
	return forms
}

// commandNotes are what only the command knows: the URL, the transport, and
// what Kayako does with a success on its side.
func (r *report) commandNotes() []string {
	var notes []string
	o, v := r.opts, r.verdict
	if r.transportErr != nil && len(r.reply) > 0 {
		notes = append(notes, "the answer was cut off ("+r.errText+"); Kayako reads the part that arrived")
	}
	if r.truncated {
		notes = append(notes, fmt.Sprintf("the answer is longer than %d MiB; only that much was judged", maxReply>>20))
	}
	if r.status >= 300 && r.status < 400 {
		if target := r.redirectTarget(); target != "" {
			advice := "give Kayako the URL it redirects to"
			if o.url.Scheme == "http" && strings.HasPrefix(target, "https://") {
				advice = "paste the https:// URL into Kayako's LoginShare setting: " + target
			}
			notes = append(notes, fmt.Sprintf("the URL redirects to %s: Kayako does not follow redirects, so %s", target, advice))
		}
	}
	if o.url.Scheme == "http" {
		notes = append(notes, "the URL is plain http: Kayako would send the password unencrypted; use an https:// URL")
	}
	path := strings.TrimSuffix(strings.ToLower(o.url.Path), "/")
	switch {
	case !o.staff && strings.HasSuffix(path, "/staff"):
		notes = append(notes, "the URL looks like a staff endpoint but this was a user login: add --staff to check it as Kayako's staff login")
	case o.staff && strings.HasSuffix(path, "/user"):
		notes = append(notes, "the URL looks like a user endpoint but this was a staff login: drop --staff to check it as Kayako's user login")
	}
	if o.staff && o.iface == "admin" {
		notes = append(notes, `Admin CP (interface admin): on any failure Kayako falls back to the local Kayako password; on success the team must be an admin team, or Kayako shows "Staff Group is not Admin"`)
	}
	if r.elapsed > 10*time.Second && r.transportErr == nil {
		notes = append(notes, fmt.Sprintf("the answer took %s: the person waits that long at every login", r.elapsed.Round(time.Second)))
	}
	switch {
	case v.User != nil && v.Outcome == kayako.Login:
		notes = append(notes, "Kayako links users by e-mail: the last of these addresses that already belongs to a user decides whom it updates "+
			"(user group and name when the group exists, designation and phone when not empty, new addresses added); "+
			"if none does, it creates the user, whose user group must exist as a registered-type group allowed on the template group")
	case v.Staff != nil && v.Outcome == kayako.Login:
		notes = append(notes, fmt.Sprintf("Kayako links staff by the typed username %q: an existing staff member keeps their team, and their designation, "+
			"mobile number and signature where set, and gets the names and e-mail above; a new one is created in team %q, which must exist", o.username, v.Staff.Team))
	}
	return notes
}

// redirectTarget is the Location resolved against the URL, its secrets
// hidden.
func (r *report) redirectTarget() string {
	if r.location == "" {
		return ""
	}
	loc, err := r.opts.url.Parse(r.location)
	if err != nil {
		return redactURL(r.location)
	}
	return redactURL(loc.String())
}

// secretParams are query parameters whose values are never printed.
var secretParams = []string{"key", "secret", "token", "pass", "pwd", "auth", "sig"}

// redactURL hides the values of query parameters that look like secrets
// (this plugin's ?key=, and the like) and any user info (user:password@).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: keep only what is surely no secret.
		out := raw
		if i := strings.IndexByte(out, '?'); i >= 0 {
			out = out[:i] + "?…"
		}
		if i := strings.Index(out, "://"); i >= 0 {
			rest := out[i+3:]
			host, _, _ := strings.Cut(rest, "/")
			if at := strings.LastIndexByte(host, '@'); at >= 0 {
				out = out[:i+3] + "…@" + rest[at+1:]
			}
		}
		return out
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	if u.RawQuery == "" {
		return u.String()
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n // the handler reads ?k%65y= as key
		}
		lower := strings.ToLower(name)
		for _, s := range secretParams {
			if hasValue && strings.Contains(lower, s) {
				parts[i] = url.QueryEscape(name) + "=REDACTED"
				break
			}
		}
	}
	u.RawQuery = strings.Join(parts, "&")
	return u.String()
}

func (r *report) who() string { return strconv.Quote(r.opts.username) }

// sentence is the verdict in words.
func (r *report) sentence() string {
	v := r.verdict
	switch v.Outcome {
	case kayako.Login:
		if r.opts.staff {
			return fmt.Sprintf("Kayako would log %s in as staff (interface %s)", r.who(), r.opts.iface)
		}
		return fmt.Sprintf("Kayako would log %s in to the support centre", r.who())
	case kayako.Refused:
		if strings.TrimSpace(v.Shows) == "" {
			return "Kayako would refuse the login and show an empty error message"
		}
		return fmt.Sprintf("Kayako would refuse the login and show %q", v.Shows)
	}
	if v.Code == kayako.CodeException {
		return "Kayako would show " + v.Shows
	}
	return fmt.Sprintf("Kayako would show %q", v.Shows)
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

// requestLine is what was sent, the password masked.
func (r *report) requestLine() string {
	fs := r.opts.fields()
	for i := range fs {
		if fs[i].name == "password" {
			fs[i].value = mask
		}
	}
	body := strings.ReplaceAll(formBody(fs), phpURLEncode(mask), mask)
	return fmt.Sprintf("POST %s, Content-Type %s, User-Agent %s: %s", redactURL(r.opts.rawURL), kayakoContentType, kayakoUserAgent, body)
}

func (r *report) httpLine() string {
	if r.status == 0 {
		return "no answer: " + r.errText
	}
	s := fmt.Sprintf("%s in %d ms", r.statusText, r.elapsed.Milliseconds())
	if target := r.redirectTarget(); target != "" && r.status >= 300 && r.status < 400 {
		s += ", redirect to " + target + " (not followed)"
	} else {
		s += ", no redirect"
	}
	return s
}

func (r *report) certLine() string {
	c := r.cert
	switch {
	case r.opts.url.Scheme == "http":
		return "none: plain http, the password crosses the network unencrypted"
	case !c.used:
		return "not seen: no TLS handshake completed"
	case c.valid:
		return fmt.Sprintf("valid for %s, issued by %s, expires %s (Kayako does not check certificates; a verifying client would accept this one)",
			r.opts.url.Hostname(), c.issuer, c.notAfter.UTC().Format("2006-01-02"))
	}
	return fmt.Sprintf("NOT valid (%s); Kayako does not verify certificates, so logins still work, but anyone on the path could pose as the endpoint and collect passwords", c.problem)
}

// textLine is one line of the text report: the label in a fixed-width
// column, so that every report lines up the same way (and greps alike).
func textLine(label, value string) string { return fmt.Sprintf("%-12s  %s\n", label, value) }

// writeText prints the report as "label  value" lines.
func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	line := func(label, value string) { b.WriteString(textLine(label, value)) }
	v := r.verdict
	line("verdict", string(v.Outcome)+": "+r.sentence())
	if v.Outcome != kayako.Login {
		line("why", r.reason)
	}
	if u := v.User; u != nil {
		line("user group", orNone(u.UserGroup))
		line("full name", orNone(u.FullName))
		if len(u.Emails) > 0 {
			line("e-mails", strings.Join(u.Emails, ", "))
		} else {
			line("e-mails", "(none Kayako keeps)")
		}
		if len(u.Dropped) > 0 {
			line("dropped", strings.Join(quoteAll(u.Dropped), ", ")+" (Kayako's e-mail validator rejects them)")
		}
		line("designation", orNone(u.Designation))
		line("phone", orNone(u.Phone))
		if u.Organization != "" {
			line("organisation", fmt.Sprintf("%s (%s; new users only)", u.Organization, u.OrganizationType))
		} else {
			line("organisation", "(none)")
		}
	}
	if s := v.Staff; s != nil {
		line("team", orNone(s.Team))
		line("first name", orNone(s.FirstName))
		line("last name", orNone(s.LastName))
		line("designation", orNone(s.Designation))
		line("e-mail", orNone(s.Email))
		line("mobile", orNone(s.MobileNumber))
		line("signature", orNone(s.Signature))
	}
	if r.excerpt != "" {
		line("reply", r.excerpt)
	}
	line("http", r.httpLine())
	line("certificate", r.certLine())
	line("request", r.requestLine())
	for _, n := range r.notes {
		line("note", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strconv.Quote(s)
	}
	return out
}

// The --json object.
type jsonReport struct {
	URL         string      `json:"url"`
	Endpoint    string      `json:"endpoint"`
	Username    string      `json:"username"`
	Verdict     string      `json:"verdict"`
	KayakoCode  string      `json:"kayako_code"`
	KayakoShows *string     `json:"kayako_shows"`
	Reason      string      `json:"reason"`
	Fields      any         `json:"fields"`
	HTTPStatus  *int        `json:"http_status"`
	Redirect    string      `json:"redirect,omitempty"`
	ElapsedMS   int64       `json:"elapsed_ms"`
	Error       string      `json:"error,omitempty"`
	Certificate *jsonCert   `json:"certificate"`
	Reply       string      `json:"reply_excerpt,omitempty"`
	Request     jsonRequest `json:"request"`
	Notes       []string    `json:"notes"`
}

type jsonCert struct {
	Valid    bool   `json:"valid"`
	Problem  string `json:"problem,omitempty"`
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer"`
	NotAfter string `json:"not_after"`
}

type jsonRequest struct {
	Method      string   `json:"method"`
	ContentType string   `json:"content_type"`
	UserAgent   string   `json:"user_agent"`
	Fields      []string `json:"fields"`
	IPAddress   string   `json:"ipaddress"`
	Interface   string   `json:"interface,omitempty"`
}

type jsonUser struct {
	UserGroup        string   `json:"usergroup"`
	FullName         string   `json:"fullname"`
	Emails           []string `json:"emails"`
	Dropped          []string `json:"emails_dropped"`
	Designation      string   `json:"designation"`
	Phone            string   `json:"phone"`
	Organization     string   `json:"organization"`
	OrganizationType string   `json:"organizationtype"`
}

type jsonStaff struct {
	Team         string `json:"team"`
	FirstName    string `json:"firstname"`
	LastName     string `json:"lastname"`
	FullName     string `json:"fullname"`
	Designation  string `json:"designation"`
	Email        string `json:"email"`
	MobileNumber string `json:"mobilenumber"`
	Signature    string `json:"signature"`
}

func (r *report) writeJSON(w io.Writer) error {
	v := r.verdict
	j := jsonReport{
		URL:        redactURL(r.opts.rawURL),
		Endpoint:   map[bool]string{false: "user", true: "staff"}[r.opts.staff],
		Username:   r.opts.username,
		Verdict:    string(v.Outcome),
		KayakoCode: string(v.Code),
		Reason:     r.reason,
		ElapsedMS:  r.elapsed.Milliseconds(),
		Error:      r.errText,
		Reply:      r.excerpt,
		Notes:      append([]string{}, r.notes...),
		Request: jsonRequest{Method: "POST", ContentType: kayakoContentType, UserAgent: kayakoUserAgent,
			IPAddress: r.opts.ipaddress},
	}
	for _, f := range r.opts.fields() {
		j.Request.Fields = append(j.Request.Fields, f.name)
	}
	if r.opts.staff {
		j.Request.Interface = r.opts.iface
	}
	if v.Outcome != kayako.Login {
		shows := v.Shows
		j.KayakoShows = &shows
	}
	if r.status != 0 {
		status := r.status
		j.HTTPStatus = &status
		if r.status >= 300 && r.status < 400 {
			j.Redirect = r.redirectTarget()
		}
	}
	if c := r.cert; c.used {
		j.Certificate = &jsonCert{Valid: c.valid, Problem: c.problem, Subject: c.subject, Issuer: c.issuer}
		if !c.notAfter.IsZero() {
			j.Certificate.NotAfter = c.notAfter.UTC().Format(time.RFC3339)
		}
	}
	switch {
	case v.User != nil:
		u := v.User
		j.Fields = jsonUser{UserGroup: u.UserGroup, FullName: u.FullName, Emails: nonNil(u.Emails), Dropped: nonNil(u.Dropped),
			Designation: u.Designation, Phone: u.Phone, Organization: u.Organization, OrganizationType: u.OrganizationType}
	case v.Staff != nil:
		s := v.Staff
		j.Fields = jsonStaff{Team: s.Team, FirstName: s.FirstName, LastName: s.LastName, FullName: s.FullName,
			Designation: s.Designation, Email: s.Email, MobileNumber: s.MobileNumber, Signature: s.Signature}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
