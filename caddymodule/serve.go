package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle"
	"github.com/kayako-loginshare/caddy-loginshare/xmlresp"
)

const (
	endpointUser  = "user"
	endpointStaff = "staff"
)

// attempt is everything the audit line and metrics say about one request.
type attempt struct {
	endpoint  string
	username  string
	ipaddress string
	iface     string
	remoteIP  string
	backend   string
	server    string
	outcome   backends.Class
	title     string
	reason    string
	status    int
	start     time.Time
}

// ServeHTTP answers requests to the two LoginShare paths and passes every other
// request to next untouched.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	endpoint := h.endpoint(r.URL.Path)
	if endpoint == "" {
		return next.ServeHTTP(w, r)
	}
	a := &attempt{endpoint: endpoint, start: now(), status: http.StatusOK}
	a.remoteIP, _ = caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)

	var doc []byte
	written := false
	defer func() {
		if p := recover(); p != nil {
			// Never show internal text to the person; the log gets the panic
			// value's type only, since it could carry request data.
			h.logger.Error("panic while answering a LoginShare request; answered a failure document",
				zap.String("endpoint", endpoint), zap.String("panic_type", typeName(p)))
			a.outcome, a.reason, a.status = backends.Unavailable, "internal error", http.StatusOK
			if !written {
				h.pad(r.Context(), a.start)
				h.write(w, a, xmlresp.FailureDocument(h.MessageUnavailable))
			}
			h.finish(a)
		}
	}()

	doc = h.handle(w, r, a)
	if a.outcome != backends.OK {
		h.pad(r.Context(), a.start)
	}
	written = true
	h.write(w, a, doc)
	h.finish(a)
	return nil
}

// endpoint matches the cleaned request path exactly (a trailing slash variant too).
func (h *Handler) endpoint(p string) string {
	if p == "" {
		return ""
	}
	c := path.Clean(p)
	switch c {
	case h.UserPath:
		return endpointUser
	case h.StaffPath:
		return endpointStaff
	}
	return ""
}

// handle runs the checks in the design's order and returns the document to send.
func (h *Handler) handle(w http.ResponseWriter, r *http.Request, a *attempt) []byte {
	if r.Method != http.MethodPost {
		a.status = http.StatusMethodNotAllowed
		return h.fail(a, backends.BadRequest, "method "+sanitizeLog(r.Method, 16)+" not allowed")
	}

	form, class, reason := h.readForm(w, r, a)
	if class != "" {
		return h.fail(a, class, reason)
	}
	c := backends.Credentials{
		Username:  form.get(fieldUsername),
		Password:  form.get(fieldPassword),
		IPAddress: form.get(fieldIPAddress),
		Interface: form.get(fieldInterface),
	}
	a.username, a.ipaddress, a.iface = c.Username, c.IPAddress, c.Interface

	if class, reason := h.checkCaller(r, a); class != "" {
		return h.fail(a, class, reason)
	}
	return h.login(r.Context(), a, c)
}

// LoginResult is the outcome of one login through the handler's own code
// path, whoever asked: ServeHTTP, or a tool such as `caddy loginshare test`.
type LoginResult struct {
	Endpoint string // "user" or "staff"
	Username string // canonical when a backend knew the person, else as typed
	Backend  string // the backend that decided
	Server   string // the directory server that answered, when known
	Outcome  backends.Class
	Reason   string // for the operator; never the password
	Title    string // the Kayako user group or team, on success
	Document []byte // the Kayako document the endpoint answers
}

// Login runs one login exactly as a LoginShare request does after its
// transport checks (method, body, allow_from, secret): staff interface,
// remember-me, normal form, throttle, backends, mapping and document. It
// does not wait out failure_delay and writes no audit line; ServeHTTP does
// both around it.
func (h *Handler) Login(ctx context.Context, endpoint string, c backends.Credentials) LoginResult {
	a := &attempt{endpoint: endpoint, start: now(), username: c.Username, ipaddress: c.IPAddress, iface: c.Interface}
	doc := h.login(ctx, a, c)
	return LoginResult{Endpoint: endpoint, Username: a.username, Backend: a.backend, Server: a.server,
		Outcome: a.outcome, Reason: a.reason, Title: a.title, Document: doc}
}

type noThrottleKey struct{}

// WithoutThrottle marks a context whose Login neither consults nor changes
// the throttle: a tool's test login must not ban anyone, nor be refused by a
// ban it did not cause.
func WithoutThrottle(ctx context.Context) context.Context {
	return context.WithValue(ctx, noThrottleKey{}, true)
}

func skipThrottle(ctx context.Context) bool {
	v, _ := ctx.Value(noThrottleKey{}).(bool)
	return v
}

// login is the part of a request that does not depend on HTTP. ctx is the
// request's context; the whole-request deadline is measured from a.start.
func (h *Handler) login(parent context.Context, a *attempt, c backends.Credentials) []byte {
	if a.endpoint == endpointStaff {
		if !h.interfaces[c.Interface] {
			return h.fail(a, backends.RefusedInterface, "staff interface not allowed")
		}
	} else {
		if c.Interface != "" {
			h.debug("interface field ignored on the user endpoint", zap.String("interface", c.Interface))
		}
		c.Interface = ""
	}

	if a.endpoint == endpointStaff && h.RememberMeHashes != "try" &&
		(c.Interface == "staff" || c.Interface == "admin") && isSHA1Hex(c.Password) {
		return h.fail(a, backends.BadRequest, "password is a 40-digit hex SHA-1 (Kayako's staff remember-me cookie); not sent to the directory")
	}

	if a.endpoint == endpointStaff && !throttle.NormalStaffName(c.Username) {
		// Kayako links staff by the typed name: ｊｄｏｅ logging in as jdoe
		// would become a second staff account.
		return h.fail(a, backends.BadRequest, "username not in normal form (NFKC)")
	}

	m := h.userMap
	if a.endpoint == endpointStaff {
		m = h.staffMap
		if m == nil {
			m = &compiledMapping{} // staff_teams omitted: nobody
		}
	}
	if !m.acceptsAnyone() {
		// No answer could let this person in: asking a directory would only
		// move its lockout counter.
		return h.fail(a, backends.NotAuthorised, "the endpoint's mapping accepts nobody ("+a.endpoint+")")
	}

	ctx, cancel := context.WithDeadline(parent, a.start.Add(time.Duration(h.Timeout)))
	defer cancel()
	var g *guard
	if h.throttle != nil && !skipThrottle(parent) {
		g = &guard{h: h, staff: a.endpoint == endpointStaff,
			typedKey: throttle.UserKey(c.Username, a.endpoint == endpointStaff), ipKey: throttle.IPKey(c.IPAddress)}
		if err := g.reserve(ctx); err != nil {
			if errors.Is(err, throttle.ErrThrottled) {
				return h.fail(a, backends.Throttled, err.Error())
			}
			return h.fail(a, backends.Unavailable, "throttle store: "+err.Error())
		}
		// Reservations are settled even when the request's context ended,
		// and even when something below panics (the settle below with the
		// real outcome makes this one do nothing).
		g.bg = context.WithoutCancel(ctx)
		defer g.settle(backends.Unavailable)
		ctx = backends.WithGate(ctx, g.gate)
	}
	chain, prompt := h.userChain, h.userPrompt
	if a.endpoint == endpointStaff {
		chain, prompt = h.staffChain, h.staffPrompt
	}
	if !m.usesGroups() {
		ctx = backends.WithoutGroups(ctx)
	}
	res, acquired := h.authenticate(ctx, chain, prompt, c)
	if !acquired {
		res = backends.Result{Err: backends.Errorf(backends.Unavailable, "no backend slot free before the deadline (max_concurrent)"), Class: backends.Unavailable}
	}
	a.backend, a.server = res.Backend, res.Identity.Server
	if g != nil {
		if acct := g.account(); acct != "" {
			a.username = acct
		}
	}
	if res.Class != backends.OK {
		if g != nil && g.settle(res.Class) {
			h.logger.Warn("login throttled: too many failures",
				zap.String("endpoint", a.endpoint), zap.String("username", sanitizeLog(a.username, 256)),
				zap.String("ipaddress", sanitizeLog(c.IPAddress, 64)))
		}
		if res.Class == backends.AmbiguousUser {
			h.logger.Error("directory search matched more than one entry; fix the user filter",
				zap.String("backend", res.Backend), zap.String("username", sanitizeLog(c.Username, 256)))
		}
		return h.fail(a, res.Class, errText(res.Err))
	}

	id := res.Identity
	if id.Username != "" {
		a.username = id.Username
	}
	doc, class, reason := h.document(ctx, a.endpoint, id, c.Username, a)
	if g != nil {
		g.settle(class)
	}
	if class != backends.OK {
		return h.fail(a, class, reason)
	}
	a.outcome = backends.OK
	return doc
}

// authenticate runs the backends under the concurrency bound. The answer
// never waits past ctx's deadline, even for a backend that ignores ctx: such
// a chain runs on a goroutine of its own, whose work then finishes in the
// background and only then frees its slot, so max_concurrent bounds the
// backend work actually running. A chain of backends.Prompt backends
// (prompt) keeps that promise itself and runs on the request's goroutine.
func (h *Handler) authenticate(ctx context.Context, chain []backends.Named, prompt bool, c backends.Credentials) (backends.Result, bool) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return backends.Result{}, false
	}
	if ctx.Err() != nil { // both were ready; the deadline wins
		<-h.sem
		return backends.Result{}, false
	}
	if prompt {
		return h.combine(ctx, chain, c), true
	}
	done := make(chan backends.Result, 1)
	go func() { done <- h.combine(ctx, chain, c) }()
	select {
	case res := <-done:
		return res, true
	case <-ctx.Done():
		return backends.Result{
			Err:   backends.Errorf(backends.Unavailable, "no backend answered within timeout"),
			Class: backends.Unavailable,
		}, true
	}
}

// combine asks the chain and frees the slot authenticate took; a panic in a
// backend is answered unavailable.
func (h *Handler) combine(ctx context.Context, chain []backends.Named, c backends.Credentials) (res backends.Result) {
	defer func() { <-h.sem }()
	defer func() {
		if p := recover(); p != nil {
			h.logger.Error("panic in a backend; answered unavailable", zap.String("panic_type", typeName(p)))
			res = backends.Result{Err: backends.Errorf(backends.Unavailable, "internal error"), Class: backends.Unavailable}
		}
	}()
	return backends.Combine(ctx, chain, c)
}

// readForm parses the body under MaxBody and applies the field checks. It reads
// the form body only (the equivalent of r.PostForm): credentials in a query
// string are ignored.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request, a *attempt) (loginForm, backends.Class, string) {
	if r.ContentLength > h.MaxBody {
		a.status = http.StatusRequestEntityTooLarge
		return loginForm{}, backends.BadRequest, "body larger than max_body"
	}
	// The body is read under the request's own deadline: Caddy's idle
	// timeout restarts with every byte, so a client trickling one byte at a
	// time would otherwise hold the request (and a goroutine) for as long as
	// it likes. The controller reaches Caddy's idle-timeout reader, which
	// keeps the deadline as a ceiling.
	rc := http.NewResponseController(w)
	deadlineSet := rc.SetReadDeadline(a.start.Add(time.Duration(h.Timeout))) == nil
	// Only the body is parsed (r.ParseForm would also parse the query string,
	// so a stray character in the configured URL would fail every login).
	bp := bodyBuffers.Get().(*[]byte)
	raw, err := readBody(r.Body, h.MaxBody, *bp)
	body := string(raw) // the fields are substrings of this copy
	if cap(raw) <= maxPooledBody {
		clear(raw) // no password waits in the pool for the next request
		*bp = raw[:0]
		bodyBuffers.Put(bp)
	}
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, errBodyTooLarge):
			a.status = http.StatusRequestEntityTooLarge
			return loginForm{}, backends.BadRequest, "body larger than max_body"
		case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			a.status = http.StatusRequestTimeout
			return loginForm{}, backends.BadRequest, "body not received within timeout"
		}
		return loginForm{}, backends.BadRequest, "body could not be read"
	}
	if deadlineSet {
		// The connection may carry the next request: lift our ceiling.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if !isFormContentType(r.Header.Get("Content-Type")) {
		return loginForm{}, backends.BadRequest, "content type is not application/x-www-form-urlencoded"
	}
	form, err := parseLoginForm(body)
	if err != nil {
		return loginForm{}, backends.BadRequest, "unparsable form body"
	}
	for i, name := range formFields {
		v := form.values[i]
		switch {
		case form.count[i] > 1:
			return loginForm{}, backends.BadRequest, "duplicate field " + name
		case form.count[i] == 0:
			continue
		case len(v) > h.MaxFieldBytes:
			return loginForm{}, backends.BadRequest, "field " + name + " longer than max_field_bytes"
		case strings.IndexByte(v, 0) >= 0:
			return loginForm{}, backends.BadRequest, "NUL byte in field " + name
		case !utf8.ValidString(v):
			return loginForm{}, backends.BadRequest, "invalid UTF-8 in field " + name
		}
	}
	// The typed username is logged from here on; it passed the checks above.
	a.username, a.ipaddress, a.iface = form.get(fieldUsername), form.get(fieldIPAddress), form.get(fieldInterface)
	if strings.TrimSpace(form.get(fieldUsername)) == "" {
		return loginForm{}, backends.BadRequest, "empty username"
	}
	if strings.TrimSpace(form.get(fieldPassword)) == "" {
		return loginForm{}, backends.BadRequest, "empty password"
	}
	return form, "", ""
}

// isSHA1Hex reports whether s looks like the SHA-1 Kayako's staff
// remember-me sends in place of a password.
func isSHA1Hex(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// checkCaller applies allow_from and secret.
func (h *Handler) checkCaller(r *http.Request, a *attempt) (backends.Class, string) {
	if len(h.allow) > 0 {
		ip, err := netip.ParseAddr(a.remoteIP)
		if err != nil {
			return backends.RefusedCaller, "client IP unknown"
		}
		ip = ip.Unmap().WithZone("")
		ok := false
		for _, p := range h.allow {
			if p.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return backends.RefusedCaller, "caller not in allow_from"
		}
	}
	if h.secret != nil {
		got := r.URL.Query()["key"]
		if len(got) != 1 {
			return backends.RefusedCaller, "missing or repeated key parameter"
		}
		// Hashing both sides makes the comparison constant-time in the length too.
		want, have := sha256.Sum256(h.secret), sha256.Sum256([]byte(got[0]))
		if subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
			return backends.RefusedCaller, "wrong key parameter"
		}
	}
	return "", ""
}

// fail records the outcome and returns the failure document with its message.
func (h *Handler) fail(a *attempt, class backends.Class, reason string) []byte {
	a.outcome, a.reason = class, reason
	return xmlresp.FailureDocument(h.message(class))
}

func (h *Handler) message(class backends.Class) string {
	switch class {
	case backends.RefusedCaller, backends.RefusedInterface:
		return h.MessageDenied
	case backends.Unavailable:
		return h.MessageUnavailable
	}
	return h.MessageInvalid
}

// pad holds a failure until failure_delay (+ jitter) has passed since start, so
// unknown user, wrong password, banned and refused cannot be told apart by time.
func (h *Handler) pad(ctx context.Context, start time.Time) {
	d := time.Duration(h.FailureDelay)
	if j := time.Duration(h.FailureJitter); j > 0 {
		d += rand.N(j + 1)
	}
	wait := time.Until(start.Add(d))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (h *Handler) write(w http.ResponseWriter, a *attempt, doc []byte) {
	hdr := w.Header()
	xmlresp.SetHeaders(hdr)
	if a.status == http.StatusMethodNotAllowed {
		hdr.Set("Allow", http.MethodPost)
	}
	if a.status == http.StatusRequestEntityTooLarge || a.status == http.StatusRequestTimeout {
		hdr.Set("Connection", "close")
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(doc)
}

// finish writes the audit line and the metrics of one request.
func (h *Handler) finish(a *attempt) {
	d := now().Sub(a.start)
	h.metrics.observe(a.endpoint, string(a.outcome), d)
	level := zapcore.InfoLevel
	if a.outcome == backends.Unavailable || a.outcome == backends.AmbiguousUser {
		level = zapcore.WarnLevel
	}
	if ce := h.audit.Check(level, "loginshare"); ce != nil {
		ce.Write(
			zap.String("endpoint", a.endpoint),
			zap.String("username", sanitizeLog(a.username, 256)),
			zap.String("ipaddress", sanitizeLog(a.ipaddress, 64)),
			zap.String("interface", sanitizeLog(a.iface, 32)),
			zap.String("remote_ip", a.remoteIP),
			zap.String("backend", a.backend),
			zap.String("server", a.server),
			zap.String("outcome", string(a.outcome)),
			zap.String("title", a.title),
			zap.String("reason", a.reason),
			zap.Int("status", a.status),
			zap.Duration("duration", d),
		)
	}
}

func (h *Handler) debug(msg string, fields ...zap.Field) {
	if ce := h.logger.Check(zapcore.DebugLevel, msg); ce != nil {
		ce.Write(fields...)
	}
}

// sanitizeLog bounds a client-supplied value for the log.
func sanitizeLog(s string, max int) string {
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func typeName(v any) string {
	switch v.(type) {
	case error:
		return "error"
	case string:
		return "string"
	}
	return "other"
}

// now is time.Now; a variable so tests can observe timing without sleeping.
var now = time.Now
