package backends

import "context"

// A Recorder receives the story of one login, step by step: which server
// answered, the entry or row found, the attributes read, the groups and how
// they were found, the mapping line. `caddy loginshare test` puts one in the
// login's context; in production there is none and Trace costs one context
// lookup. Steps never carry a password or a secret.
type Recorder interface {
	Record(Step)
}

// Step is one line of a login's story.
type Step struct {
	// Who wrote it: the backend's module name (ldap, sql, static) or
	// "handler", "throttle", "mapping".
	Source string
	// What happened, in plain words ("user entry found", "bind refused").
	What string
	// Details as ordered key/value pairs (server, dn, attribute values …).
	Fields []Field
}

// Field is one detail of a Step.
type Field struct {
	Key   string
	Value string
}

type traceKey struct{}

// WithTrace returns a context whose logins are recorded by r.
func WithTrace(ctx context.Context, r Recorder) context.Context {
	return context.WithValue(ctx, traceKey{}, r)
}

// Tracing reports whether ctx carries a Recorder; use it to skip building
// details nobody will read.
func Tracing(ctx context.Context) bool {
	r, _ := ctx.Value(traceKey{}).(Recorder)
	return r != nil
}

// Trace records a step when ctx carries a Recorder. kv are key, value pairs;
// an odd last key gets an empty value.
func Trace(ctx context.Context, source, what string, kv ...string) {
	r, _ := ctx.Value(traceKey{}).(Recorder)
	if r == nil {
		return
	}
	st := Step{Source: source, What: what}
	for i := 0; i < len(kv); i += 2 {
		f := Field{Key: kv[i]}
		if i+1 < len(kv) {
			f.Value = kv[i+1]
		}
		st.Fields = append(st.Fields, f)
	}
	r.Record(st)
}
