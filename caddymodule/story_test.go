package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

type storyRecorder struct {
	mu    sync.Mutex
	steps []backends.Step
}

func (r *storyRecorder) Record(s backends.Step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

func (r *storyRecorder) text() string {
	var b strings.Builder
	for _, s := range r.steps {
		fmt.Fprintf(&b, "%s: %s", s.Source, s.What)
		for _, f := range s.Fields {
			fmt.Fprintf(&b, " %s=%q", f.Key, f.Value)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// loginHandler provisions a handler from its JSON outside any server, as
// `caddy loginshare test` does.
func loginHandler(t *testing.T, cfg string) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	mod, err := ctx.LoadModuleByID("http.handlers.loginshare", json.RawMessage(cfg))
	if err != nil {
		t.Fatal(err)
	}
	h := mod.(*Handler)
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// TestLoginTellsItsStory: Login through the handler's own code path, with a
// recorder in the context, against the real slapd: the server, the DN, the
// attributes, the groups and how they were found, the mapping line; and the
// password in none of it. The same code path answers HTTP (every other test).
func TestLoginTellsItsStory(t *testing.T) {
	dir := slapdtest.Start(t)
	cfg := fmt.Sprintf(`{"throttle":{"per_user":1,"per_ip":0},
		"user_groups":{"map":[{"group":"no-such-group","title":"Nobody"},{"group":"helpdesk-users","title":"Customers"}]},
		"backends":[{"backend":"ldap","name":"corp","servers":[%q],"tls":{"ca_file":%q},"preset":"openldap",
			"bind_dn":%q,"bind_password":%q,"base_dn":%q,"groups":[{"method":"memberof"}]}]}`,
		dir.LDAPSURL, dir.CAFile, dir.BindDN, dir.BindPassword, dir.BaseDN)
	h := loginHandler(t, cfg)

	rec := &storyRecorder{}
	ctx := backends.WithTrace(WithoutThrottle(context.Background()), rec)
	res := h.Login(ctx, endpointUser, backends.Credentials{Username: "JDOE", Password: slapdtest.Password, IPAddress: "203.0.113.7"})
	story := rec.text()
	if res.Outcome != backends.OK || res.Title != "Customers" || res.Backend != "corp" || res.Username != slapdtest.JDoe {
		t.Fatalf("result %+v\n%s", res, story)
	}
	if !strings.Contains(string(res.Document), "<usergroup>Customers</usergroup>") {
		t.Errorf("document %s", res.Document)
	}
	for _, want := range []string{
		"ldap: user search", dir.LDAPSURL,
		"ldap: user entry found", slapdtest.JDoeDN,
		"ldap: user bind succeeded",
		"ldap: attributes read", slapdtest.JDoeMail,
		`ldap: groups looked up method="memberof"`, slapdtest.GroupUsers,
		`mapping: user_groups line matched line="2" group="helpdesk-users" title="Customers"`,
		`handler: backend answered backend="corp" class="ok"`,
	} {
		if !strings.Contains(story, want) {
			t.Errorf("story lacks %q:\n%s", want, story)
		}
	}
	if strings.Contains(story, slapdtest.Password) || strings.Contains(story, dir.BindPassword) {
		t.Errorf("the story shows a password:\n%s", story)
	}

	// A wrong password: the refusal and its class are in the story, and
	// WithoutThrottle kept the per_user 1 throttle out of it, so the right
	// password still works afterwards.
	rec2 := &storyRecorder{}
	res = h.Login(backends.WithTrace(WithoutThrottle(context.Background()), rec2), endpointUser,
		backends.Credentials{Username: "jdoe", Password: "wrong-password-1"})
	if res.Outcome != backends.InvalidCredentials || !strings.Contains(rec2.text(), `ldap: user bind refused`) {
		t.Fatalf("wrong password: %+v\n%s", res, rec2.text())
	}
	if strings.Contains(rec2.text(), "wrong-password-1") {
		t.Errorf("the story shows the typed password:\n%s", rec2.text())
	}
	if res = h.Login(WithoutThrottle(context.Background()), endpointUser, backends.Credentials{Username: "jdoe", Password: slapdtest.Password}); res.Outcome != backends.OK {
		t.Fatalf("a test login fed the throttle: %+v", res)
	}
	// Without WithoutThrottle the same handler counts: one failure bans.
	h.Login(context.Background(), endpointUser, backends.Credentials{Username: "jdoe", Password: "wrong"})
	if res = h.Login(context.Background(), endpointUser, backends.Credentials{Username: "jdoe", Password: slapdtest.Password}); res.Outcome != backends.Throttled {
		t.Fatalf("after a counted failure with per_user 1: %+v", res)
	}
}
