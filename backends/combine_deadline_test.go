package backends

import (
	"context"
	"errors"
	"testing"
)

// cancelling answers like answer and then ends the request's context, as a
// deadline passing while the backend was busy would.
type cancelling struct {
	answer
	cancel context.CancelFunc
}

func (c cancelling) Authenticate(ctx context.Context, cr Credentials) (Identity, error) {
	id, err := c.answer.Authenticate(ctx, cr)
	c.cancel()
	return id, err
}

// A backend that was never asked might know the user: when the deadline ends
// the walk early, "every backend said unknown_user" is not true, and the
// answer must be unavailable (not invalid, and not a throttle-counted guess).
func TestCombineDeadlineBeforeLaterBackendIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	asked := make([]int, 2)
	list := []Named{
		{Name: "b0", Backend: cancelling{answer{err: ErrUnknownUser, n: &asked[0]}, cancel}},
		{Name: "b1", Backend: answer{id: Identity{Username: "jdoe"}, n: &asked[1]}},
	}
	res := Combine(ctx, list, Credentials{Username: "jdoe", Password: "pw"})
	if res.Class != Unavailable || asked[1] != 0 {
		t.Errorf("class %s (err %v), asked %v; want unavailable with b1 never asked", res.Class, res.Err, asked)
	}
	if !errors.Is(res.Err, ErrUnavailable) {
		t.Errorf("err %v is not unavailable", res.Err)
	}
}
