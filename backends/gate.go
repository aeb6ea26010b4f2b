package backends

import "context"

// GateFunc is the handler's throttle check on the account a backend found.
// canonical is the account's own name as the backend stores it (the
// directory's uid or sAMAccountName, the row's username), never the typed
// spelling. A non-nil error means the login must stop here: return it as it
// is, without verifying the password.
type GateFunc func(canonical string) error

type gateKey struct{}

// WithGate returns a context that carries g for the backends to call.
func WithGate(ctx context.Context, g GateFunc) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// Gate must be called by a backend once it has found the account and before
// it verifies the password (sends the bind, compares the hash), with the
// account's canonical name. It returns nil when ctx carries no gate (tests,
// tools) or the gate lets the attempt through, and an error of class
// Throttled otherwise, which the backend returns unchanged. Calling it again
// for the same name in one login (after a failover, say) is harmless.
//
// Through the gate every spelling the directory accepts for one account
// (ｊｄｏｅ, JDOE, EXAMPLE\jdoe, jdoe@example.org) is counted in that
// account's bucket, so a ban on the account holds whatever is typed.
func Gate(ctx context.Context, canonical string) error {
	g, _ := ctx.Value(gateKey{}).(GateFunc)
	if g == nil {
		return nil
	}
	return g(canonical)
}

// Base holds the options every backend has; embed it in a backend module so
// its JSON carries "name" and the handler can ask BackendName.
type Base struct {
	// Name of this backend in audit lines, metrics and stories, unique within
	// a handler. Default: the module name (ldap, sql, static), then ldap#2, …
	Name string `json:"name,omitempty"`
}

// BackendName returns the configured name (empty when not set).
func (b Base) BackendName() string { return b.Name }

// Namer is implemented by backends that embed Base.
type Namer interface{ BackendName() string }

type noGroupsKey struct{}

// WithoutGroups marks a login whose answer cannot depend on groups (the
// endpoint's mapping has no group lines: everyone gets the default title),
// so backends may skip the group lookup, often a whole directory round trip.
func WithoutGroups(ctx context.Context) context.Context {
	return context.WithValue(ctx, noGroupsKey{}, true)
}

// NeedGroups reports whether the backend must look the person's groups up.
// It is true unless the handler said otherwise with WithoutGroups.
func NeedGroups(ctx context.Context) bool {
	skip, _ := ctx.Value(noGroupsKey{}).(bool)
	return !skip
}

// SetBackendName records the name the handler gave this backend (its
// configured name, or the module name and #n) when none was configured, so
// the backend's own metrics use the same name as audit lines.
func (b *Base) SetBackendName(name string) {
	if b.Name == "" {
		b.Name = name
	}
}

// ProbeResult is one server's answer to a reachability probe.
type ProbeResult struct {
	// Server is the URL or host the probe reached for (never with a password).
	Server string
	// Err is nil when the server answered and, where there is one, accepted
	// the service account.
	Err error
	// Detail says what was checked ("TLS, service bind, root DSE").
	Detail string
}

// Prober is implemented by backends that can check, on demand, that every
// server they use answers (`caddy loginshare test --probe`).
type Prober interface {
	Probe(ctx context.Context) []ProbeResult
}
