// Package backends defines the contract between the LoginShare handler and the
// places that know people: a Backend authenticates Credentials and answers an
// Identity, or an error that carries one outcome class.
//
// Backends are Caddy guest modules in the namespace "loginshare.backends"
// (loginshare.backends.ldap, loginshare.backends.static). The handler tries them
// in the order they are configured; see Combine for how several answers become one.
package backends

import (
	"context"
	"errors"
	"fmt"
)

// Credentials is one login attempt as Kayako sent it. Password is never logged.
type Credentials struct {
	Username  string // as typed by the person (already checked for NUL, UTF-8 and length)
	Password  string
	IPAddress string // the end user's address as Kayako reports it; may be empty
	Interface string // staff interface (staff, winapp, ...); empty on the user endpoint
}

// Identity is what a backend knows about an authenticated person.
type Identity struct {
	Username                                 string // canonical, as stored in the directory
	FirstName, LastName, FullName            string
	Emails                                   []string // primary first, de-duplicated
	Phone, Mobile, Designation, Organization string
	Groups                                   []Group // what group mapping may match on
	// Server names the directory server that answered (for the audit log); may be empty.
	Server string
}

// Group is one group the person belongs to. DN is empty for backends without DNs
// (static accounts); Name is the group's short name.
type Group struct {
	DN   string
	Name string
}

// Backend authenticates people. Implementations must be safe for concurrent use,
// must honour ctx's deadline, and must never put the password into an error.
type Backend interface {
	Authenticate(ctx context.Context, c Credentials) (Identity, error)
}

// Prompt is implemented by backends that return within milliseconds of ctx's
// end whatever their servers do: every wait is on ctx or on a socket deadline
// taken from it, and no step does unbounded work (a password hash of the
// database's choosing is such work). The handler asks a chain made only of
// such backends on the request's own goroutine, which saves a goroutine start
// and two hand-offs per login; any other backend runs on a goroutine of its
// own, so one that overstays its deadline cannot hold the answer.
type Prompt interface {
	Backend
	ReturnsPromptly()
}

// AllPrompt reports whether every backend of the list is Prompt.
func AllPrompt(list []Named) bool {
	for _, nb := range list {
		if _, ok := nb.Backend.(Prompt); !ok {
			return false
		}
	}
	return true
}

// Class is the outcome class of one login attempt: the audit log and the metric
// label carry it, the person only ever sees the message that goes with it.
type Class string

// The outcome classes of the design's table.
const (
	OK                 Class = "ok"
	InvalidCredentials Class = "invalid_credentials"
	UnknownUser        Class = "unknown_user"
	AmbiguousUser      Class = "ambiguous_user"
	AccountDisabled    Class = "account_disabled"
	AccountLocked      Class = "account_locked"
	AccountExpired     Class = "account_expired"
	PasswordExpired    Class = "password_expired"
	LogonRestricted    Class = "logon_restricted"
	PolicyDenied       Class = "policy_denied"
	NotAuthorised      Class = "not_authorised"
	Unavailable        Class = "unavailable"
	RefusedInterface   Class = "refused_interface"
	RefusedCaller      Class = "refused_caller"
	Throttled          Class = "throttled"
	BadRequest         Class = "bad_request"
)

// Error is a classified backend error. Reason is for the operator's log; it never
// contains a password. Err, when set, is the underlying cause.
type Error struct {
	Class  Class
	Reason string
	Err    error
}

func (e *Error) Error() string {
	msg := string(e.Class)
	switch {
	case e.Reason != "": // Errorf's reason already includes Err's text
		msg += ": " + e.Reason
	case e.Err != nil:
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnknownUser) and friends match any *Error of that class.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Err == nil && t.Class == e.Class
}

// Sentinels for errors.Is; wrap them with Errorf or return them as they are.
var (
	ErrInvalidCredentials = &Error{Class: InvalidCredentials}
	ErrUnknownUser        = &Error{Class: UnknownUser}
	ErrAmbiguousUser      = &Error{Class: AmbiguousUser}
	ErrAccountDisabled    = &Error{Class: AccountDisabled}
	ErrAccountLocked      = &Error{Class: AccountLocked}
	ErrAccountExpired     = &Error{Class: AccountExpired}
	ErrPasswordExpired    = &Error{Class: PasswordExpired}
	ErrLogonRestricted    = &Error{Class: LogonRestricted}
	ErrPolicyDenied       = &Error{Class: PolicyDenied}
	ErrUnavailable        = &Error{Class: Unavailable}
)

// Errorf returns an *Error of the given class with a formatted reason. A %w verb
// in format sets Err. Never pass a password.
func Errorf(class Class, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Class: class, Reason: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// ClassOf returns the outcome class carried by err: OK for nil, the class of an
// *Error in its chain, and Unavailable for anything unclassified (a backend that
// cannot say what happened must not make the handler claim the password is wrong).
func ClassOf(err error) Class {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Unavailable
}

// Continues reports whether the next backend should be asked after this class:
// only when this backend does not know the user or cannot answer.
func (c Class) Continues() bool { return c == UnknownUser || c == Unavailable }

// CountsAsFailure reports whether the throttle counts this class as a failed guess.
func (c Class) CountsAsFailure() bool {
	switch c {
	case InvalidCredentials, UnknownUser, AccountDisabled, AccountExpired,
		PasswordExpired, LogonRestricted, PolicyDenied:
		return true
	}
	return false
}
