package ldap

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

// transportError is a failure to talk to a server at all: dial, TLS,
// StartTLS, a broken or timed-out connection, a garbled answer. Such a
// server is marked down and the next one is tried.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// serviceError: the service account's bind was refused. Not a transport
// problem (the other servers share the account), and never the user's fault.
type serviceError struct{ err error }

func (e *serviceError) Error() string { return "service account bind refused: " + e.err.Error() }
func (e *serviceError) Unwrap() error { return e.err }

// bindInterrupted: the user's bind request was written, then the connection
// broke. The directory may have counted it, so it is never repeated.
type bindInterrupted struct{ err error }

func (e *bindInterrupted) Error() string {
	return "connection broke after the bind request was sent: " + e.err.Error()
}
func (e *bindInterrupted) Unwrap() error { return e.err }

// isTransport reports whether err is transport-class: anything that is not
// an LDAP result the server sent, plus 51 busy and 52 unavailable.
func isTransport(err error) bool {
	if err == nil || errors.Is(err, errAcquireTimeout) || errors.Is(err, errPoolClosed) {
		return false
	}
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var se *serviceError
	if errors.As(err, &se) {
		return false
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case goldap.LDAPResultBusy, goldap.LDAPResultUnavailable:
			return true
		}
		// go-ldap's own codes (ErrorNetwork 200 and the decoding errors
		// above it) describe the connection, not the directory's answer.
		return le.ResultCode >= goldap.ErrorNetwork
	}
	return true // plain errors from go-ldap's reader: the connection broke
}

// isBusy reports 51/52: the server answered, but will not serve now.
func isBusy(err error) bool {
	return goldap.IsErrorAnyOf(err, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable)
}

// failsOver reports whether the login may move to the next server.
func failsOver(err error) bool {
	var be *backends.Error
	if errors.As(err, &be) {
		return false // already classified: final for this login
	}
	var bi *bindInterrupted
	if errors.As(err, &bi) {
		return false
	}
	return isTransport(err)
}

var adSubcode = regexp.MustCompile(`data ([0-9a-fA-F]{3,4})`)

// classifyBind turns a user bind failure into an outcome class.
func classifyBind(err error, dn, server string) *backends.Error {
	var bi *bindInterrupted
	if errors.As(err, &bi) || isTransport(err) {
		return backends.Errorf(backends.Unavailable, "bind as %q on %s: %w", dn, server, err)
	}
	if errors.Is(err, errAcquireTimeout) || errors.Is(err, errPoolClosed) {
		return backends.Errorf(backends.Unavailable, "bind on %s: %w", server, err)
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		return backends.Errorf(backends.Unavailable, "bind as %q on %s: %w", dn, server, err)
	}
	diag := ""
	if le.Err != nil {
		diag = le.Err.Error()
	}
	switch le.ResultCode {
	case goldap.LDAPResultInvalidCredentials:
		class, sub := backends.InvalidCredentials, ""
		if m := adSubcode.FindStringSubmatch(diag); m != nil {
			sub = strings.ToLower(m[1])
			class = adClass(sub)
		}
		if sub != "" {
			return backends.Errorf(class, "bind as %q on %s: LDAP 49, AD sub-code %s", dn, server, sub)
		}
		return backends.Errorf(class, "bind as %q on %s: LDAP 49 invalid credentials", dn, server)
	case goldap.LDAPResultConstraintViolation, goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultUnwillingToPerform:
		return backends.Errorf(backends.PolicyDenied, "bind as %q on %s: LDAP %d %s: %s", dn, server,
			le.ResultCode, goldap.LDAPResultCodeMap[le.ResultCode], diag)
	}
	return backends.Errorf(backends.Unavailable, "bind as %q on %s: LDAP %d %s: %s", dn, server,
		le.ResultCode, goldap.LDAPResultCodeMap[le.ResultCode], diag)
}

// adClass maps the sub-code of an AD "data xxx" diagnostic.
func adClass(sub string) backends.Class {
	switch sub {
	case "52e":
		return backends.InvalidCredentials
	case "525":
		return backends.UnknownUser
	case "530", "531":
		return backends.LogonRestricted
	case "532", "773":
		return backends.PasswordExpired
	case "533":
		return backends.AccountDisabled
	case "701":
		return backends.AccountExpired
	case "775":
		return backends.AccountLocked
	}
	return backends.InvalidCredentials
}

// describe is a short reason for logs (never contains a password: none of
// the errors wrapped here carries one).
func describe(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
