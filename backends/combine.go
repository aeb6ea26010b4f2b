package backends

import "context"

// Named is a backend with the name the audit log shows for it.
type Named struct {
	Name    string
	Backend Backend
}

// Result is the combined answer of an ordered list of backends.
type Result struct {
	Identity Identity
	Err      error  // nil on success
	Class    Class  // ClassOf(Err)
	Backend  string // name of the backend that decided (or the last one asked)
}

// Combine asks the backends in order. It stops at the first success or at the
// first class that must not continue (a known user with a wrong password is
// tried nowhere else). When every backend said unknown_user the answer is
// unknown_user; when any was unavailable and none knew the user, the answer is
// unavailable, since nobody can claim the password is wrong; so is a walk that
// the deadline ends before every backend was asked.
func Combine(ctx context.Context, list []Named, c Credentials) Result {
	var res Result
	var unavailable *Result
	for _, nb := range list {
		if ctx.Err() != nil {
			if res.Class != "" && unavailable == nil {
				// Backends were asked but nb never was, and it might know
				// the user: nobody can claim the user is unknown.
				return Result{
					Err:     Errorf(Unavailable, "deadline passed before backend %s was asked: %w", nb.Name, ctx.Err()),
					Class:   Unavailable,
					Backend: nb.Name,
				}
			}
			break
		}
		id, err := nb.Backend.Authenticate(ctx, c)
		class := ClassOf(err)
		if Tracing(ctx) {
			reason := ""
			if err != nil {
				reason = err.Error()
			}
			Trace(ctx, "handler", "backend answered", "backend", nb.Name, "class", string(class), "reason", reason)
		}
		res = Result{Identity: id, Err: err, Class: class, Backend: nb.Name}
		if !class.Continues() {
			return res
		}
		if class == Unavailable && unavailable == nil {
			r := res
			unavailable = &r
		}
	}
	if unavailable != nil {
		return *unavailable
	}
	if res.Class == "" {
		// No backend was asked (none configured, or the deadline passed first).
		return Result{Err: Errorf(Unavailable, "no backend answered"), Class: Unavailable}
	}
	return res
}
