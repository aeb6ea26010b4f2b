package backends

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type answer struct {
	id  Identity
	err error
	n   *int
}

func (a answer) Authenticate(context.Context, Credentials) (Identity, error) {
	*a.n++
	return a.id, a.err
}

func TestClassOfAndErrorsIs(t *testing.T) {
	wrapped := fmt.Errorf("server x: %w", Errorf(AccountLocked, "data 775"))
	if ClassOf(wrapped) != AccountLocked || !errors.Is(wrapped, ErrAccountLocked) || errors.Is(wrapped, ErrAccountDisabled) {
		t.Errorf("classification through wrapping failed: %v", wrapped)
	}
	if ClassOf(nil) != OK {
		t.Error("nil is not ok")
	}
	if ClassOf(errors.New("mystery")) != Unavailable {
		t.Error("an unclassified error must not claim the password is wrong")
	}
	cause := errors.New("dial tcp: refused")
	e := Errorf(Unavailable, "server 1: %w", cause)
	if !errors.Is(e, cause) || e.Error() != "unavailable: server 1: dial tcp: refused" {
		t.Errorf("Errorf: %q", e.Error())
	}
}

func TestThrottleCountsTheDesignsClasses(t *testing.T) {
	counts := map[Class]bool{
		InvalidCredentials: true, UnknownUser: true, AccountDisabled: true, AccountExpired: true,
		PasswordExpired: true, LogonRestricted: true, PolicyDenied: true,
		AccountLocked: false, AmbiguousUser: false, NotAuthorised: false, Unavailable: false,
		RefusedInterface: false, RefusedCaller: false, Throttled: false, BadRequest: false, OK: false,
	}
	for c, want := range counts {
		if c.CountsAsFailure() != want {
			t.Errorf("%s counts: %v, want %v", c, c.CountsAsFailure(), want)
		}
	}
}

func TestCombineStopsAndContinuesByClass(t *testing.T) {
	ok := Identity{Username: "jdoe"}
	tests := []struct {
		name      string
		answers   []error
		want      Class
		wantAsked []int
		backend   string
	}{
		{"first ok", []error{nil, ErrUnknownUser}, OK, []int{1, 0}, "b0"},
		{"wrong password stops", []error{ErrInvalidCredentials, nil}, InvalidCredentials, []int{1, 0}, "b0"},
		{"locked stops", []error{ErrAccountLocked, nil}, AccountLocked, []int{1, 0}, "b0"},
		{"unknown moves on", []error{ErrUnknownUser, nil}, OK, []int{1, 1}, "b1"},
		{"unavailable moves on", []error{ErrUnavailable, nil}, OK, []int{1, 1}, "b1"},
		{"all unknown", []error{ErrUnknownUser, ErrUnknownUser}, UnknownUser, []int{1, 1}, "b1"},
		{"unknown and unavailable is unavailable", []error{ErrUnknownUser, ErrUnavailable}, Unavailable, []int{1, 1}, "b1"},
		{"unavailable then unknown is unavailable", []error{ErrUnavailable, ErrUnknownUser}, Unavailable, []int{1, 1}, "b0"},
		{"unavailable then wrong password", []error{ErrUnavailable, ErrInvalidCredentials}, InvalidCredentials, []int{1, 1}, "b1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked := make([]int, len(tc.answers))
			var list []Named
			for i, err := range tc.answers {
				id := Identity{}
				if err == nil {
					id = ok
				}
				list = append(list, Named{Name: fmt.Sprintf("b%d", i), Backend: answer{id, err, &asked[i]}})
			}
			res := Combine(context.Background(), list, Credentials{Username: "jdoe", Password: "pw"})
			if res.Class != tc.want || res.Backend != tc.backend || fmt.Sprint(asked) != fmt.Sprint(tc.wantAsked) {
				t.Errorf("class %s backend %s asked %v; want %s %s %v", res.Class, res.Backend, asked, tc.want, tc.backend, tc.wantAsked)
			}
		})
	}
}

func TestCombineWithNothingToAskIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	res := Combine(ctx, []Named{{Name: "x", Backend: answer{n: &n}}}, Credentials{})
	if res.Class != Unavailable || n != 0 {
		t.Errorf("%v asked %d", res.Class, n)
	}
	if res := Combine(context.Background(), nil, Credentials{}); res.Class != Unavailable || !strings.Contains(res.Err.Error(), "no backend") {
		t.Errorf("%v", res.Err)
	}
}
