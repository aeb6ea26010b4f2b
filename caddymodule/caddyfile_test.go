package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func parse(t *testing.T, input string) (*Handler, error) {
	t.Helper()
	h := new(Handler)
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return h, err
}

func intp(n int) *int { return &n }

func TestCaddyfileOptions(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, h *Handler)
	}{
		{"paths", `loginshare {
			user_path /a/user
			staff_path /a/staff
		}`, func(t *testing.T, h *Handler) {
			if h.UserPath != "/a/user" || h.StaffPath != "/a/staff" {
				t.Errorf("%q %q", h.UserPath, h.StaffPath)
			}
		}},
		{"allow_from accumulates", `loginshare {
			allow_from 10.0.0.1 192.168.0.0/16
			allow_from 2001:db8::/32
		}`, func(t *testing.T, h *Handler) {
			if strings.Join(h.AllowFrom, " ") != "10.0.0.1 192.168.0.0/16 2001:db8::/32" {
				t.Errorf("%v", h.AllowFrom)
			}
		}},
		{"secret stays a placeholder", `loginshare {
			secret {env.LOGINSHARE_KEY}
		}`, func(t *testing.T, h *Handler) {
			if h.Secret != "{env.LOGINSHARE_KEY}" {
				t.Errorf("%q", h.Secret)
			}
		}},
		{"staff_interfaces replaces", `loginshare {
			staff_interfaces staff admin
		}`, func(t *testing.T, h *Handler) {
			if strings.Join(h.StaffInterfaces, " ") != "staff admin" {
				t.Errorf("%v", h.StaffInterfaces)
			}
		}},
		{"remember_me_hashes", `loginshare {
			remember_me_hashes try
		}`, func(t *testing.T, h *Handler) {
			if h.RememberMeHashes != "try" {
				t.Errorf("%q", h.RememberMeHashes)
			}
		}},
		{"durations and sizes", `loginshare {
			timeout 20s
			failure_delay 500ms
			failure_jitter 50ms
			max_field_bytes 256
			max_body 32KiB
			max_concurrent 8
		}`, func(t *testing.T, h *Handler) {
			if time.Duration(h.Timeout) != 20*time.Second || time.Duration(h.FailureDelay) != 500*time.Millisecond ||
				time.Duration(h.FailureJitter) != 50*time.Millisecond || h.MaxFieldBytes != 256 || h.MaxBody != 32768 || h.MaxConcurrent != 8 {
				t.Errorf("%+v", h)
			}
		}},
		{"messages", `loginshare {
			message_invalid "Bad login"
			message_unavailable "Try later"
			message_denied "No"
		}`, func(t *testing.T, h *Handler) {
			if h.MessageInvalid != "Bad login" || h.MessageUnavailable != "Try later" || h.MessageDenied != "No" {
				t.Errorf("%+v", h)
			}
		}},
		{"messages block", `loginshare {
			messages {
				invalid "Bad login"
				unavailable "Try later"
				denied "No"
			}
		}`, func(t *testing.T, h *Handler) {
			if h.MessageInvalid != "Bad login" || h.MessageUnavailable != "Try later" || h.MessageDenied != "No" {
				t.Errorf("%+v", h)
			}
		}},
		{"throttle block", `loginshare {
			throttle {
				per_user 3 5m
				per_ip 0
				ban 1h
				max_keys 500
			}
		}`, func(t *testing.T, h *Handler) {
			th := h.Throttle
			if th == nil || *th.PerUser != 3 || time.Duration(th.PerUserWindow) != 5*time.Minute || *th.PerIP != 0 ||
				th.PerIPWindow != 0 || time.Duration(th.Ban) != time.Hour || th.MaxKeys != 500 || th.Off {
				t.Errorf("%+v", th)
			}
		}},
		{"throttle off", `loginshare {
			throttle off
		}`, func(t *testing.T, h *Handler) {
			if h.Throttle == nil || !h.Throttle.Off {
				t.Errorf("%+v", h.Throttle)
			}
		}},
		{"mappings keep order and default", `loginshare {
			user_groups {
				"cn=Kayako Users,ou=groups,dc=example,dc=org" Registered
				default Guests
				vip "VIP Customers"
			}
			staff_teams {
				helpdesk-staff Support
			}
		}`, func(t *testing.T, h *Handler) {
			want := &Mapping{Map: []MappingLine{{"cn=Kayako Users,ou=groups,dc=example,dc=org", "Registered"}, {"vip", "VIP Customers"}}, Default: "Guests"}
			if a, b := mustJSON(t, h.UserGroups), mustJSON(t, want); a != b {
				t.Errorf("%s != %s", a, b)
			}
			if len(h.StaffTeams.Map) != 1 || h.StaffTeams.Default != "" {
				t.Errorf("%+v", h.StaffTeams)
			}
		}},
		{"empty mapping is present", `loginshare {
			user_groups {
			}
		}`, func(t *testing.T, h *Handler) {
			if h.UserGroups == nil || len(h.UserGroups.Map) != 0 {
				t.Errorf("%+v", h.UserGroups)
			}
		}},
		{"backends accumulate in order", `loginshare {
			backend static {
				user a $2a$04$abcdefghijklmnopqrstuu5Xmr5Sc3mFSnlvn2E2bkBhyKvc7XWfG
			}
			backend static {
				hash bcrypt
				user b $2a$04$abcdefghijklmnopqrstuu5Xmr5Sc3mFSnlvn2E2bkBhyKvc7XWfG
			}
		}`, func(t *testing.T, h *Handler) {
			if len(h.BackendsRaw) != 2 || !strings.Contains(string(h.BackendsRaw[0]), `"backend":"static"`) ||
				!strings.Contains(string(h.BackendsRaw[1]), `"username":"b"`) {
				t.Errorf("%s", h.BackendsRaw)
			}
		}},
		{"defaults left empty for Provision", `loginshare`, func(t *testing.T, h *Handler) {
			if h.UserPath != "" || h.Timeout != 0 || h.Throttle != nil || h.UserGroups != nil {
				t.Errorf("%+v", h)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parse(t, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, h)
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCaddyfileErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, input, want string
		line              int
	}{
		{"argument on directive", "loginshare foo {\n}", "wrong argument count", 1},
		{"unknown option", "loginshare {\n\tbogus 1\n}", `unknown loginshare option "bogus"`, 2},
		{"scalar twice", "loginshare {\n\tuser_path /a\n\tuser_path /b\n}", "user_path given more than once", 3},
		{"timeout twice", "loginshare {\n\ttimeout 1s\n\ttimeout 2s\n}", "timeout given more than once", 3},
		{"staff_interfaces twice", "loginshare {\n\tstaff_interfaces staff\n\tstaff_interfaces winapp\n}", "given more than once", 3},
		{"remember_me_hashes value", "loginshare {\n\tremember_me_hashes maybe\n}", "want refuse or try", 2},
		{"remember_me_hashes twice", "loginshare {\n\tremember_me_hashes try\n\tremember_me_hashes try\n}", "more than once", 3},
		{"path without slash", "loginshare {\n\tuser_path user\n}", "must start with /", 2},
		{"path missing", "loginshare {\n\tstaff_path\n}", "wrong argument count", 2},
		{"path extra", "loginshare {\n\tstaff_path /a /b\n}", "wrong argument count", 2},
		{"bad allow_from", "loginshare {\n\tallow_from 10.0.0.0/33\n}", "not an address or CIDR", 2},
		{"allow_from empty", "loginshare {\n\tallow_from\n}", "wrong argument count", 2},
		{"uppercase interface", "loginshare {\n\tstaff_interfaces Staff\n}", "lowercase", 2},
		{"bad duration", "loginshare {\n\ttimeout soon\n}", "not a duration", 2},
		{"zero timeout", "loginshare {\n\ttimeout 0s\n}", "positive", 2},
		{"negative delay", "loginshare {\n\tfailure_delay -1s\n}", "negative", 2},
		{"zero delay", "loginshare {\n\tfailure_delay 0\n}", "positive", 2},
		{"zero jitter", "loginshare {\n\tfailure_jitter 0s\n}", "positive", 2},
		{"bad number", "loginshare {\n\tmax_field_bytes many\n}", "positive whole number", 2},
		{"zero concurrency", "loginshare {\n\tmax_concurrent 0\n}", "positive whole number", 2},
		{"bad size", "loginshare {\n\tmax_body lots\n}", "not a size", 2},
		{"percent in message", "loginshare {\n\tmessage_invalid \"100% wrong\"\n}", "must not contain %", 2},
		{"empty message", "loginshare {\n\tmessage_denied \"\"\n}", "must not be empty", 2},
		{"unknown message kind", "loginshare {\n\tmessages {\n\t\tother x\n\t}\n}", "unknown message", 3},
		{"message twice via block", "loginshare {\n\tmessage_invalid a\n\tmessages {\n\t\tinvalid b\n\t}\n}", "more than once", 4},
		{"throttle bad arg", "loginshare {\n\tthrottle on\n}", "throttle takes `off`", 2},
		{"throttle unknown", "loginshare {\n\tthrottle {\n\t\tper_host 1\n\t}\n}", "unknown throttle option", 3},
		{"throttle bad count", "loginshare {\n\tthrottle {\n\t\tper_user x 1m\n\t}\n}", "not a count", 3},
		{"throttle bad window", "loginshare {\n\tthrottle {\n\t\tper_ip 5 never\n\t}\n}", "not a positive duration", 3},
		{"throttle twice", "loginshare {\n\tthrottle off\n\tthrottle off\n}", "more than once", 3},
		{"throttle option twice", "loginshare {\n\tthrottle {\n\t\tban 1m\n\t\tban 2m\n\t}\n}", "more than once", 4},
		{"mapping without title", "loginshare {\n\tuser_groups {\n\t\thelpdesk\n\t}\n}", "want `<group> <title>`", 3},
		{"mapping extra arg", "loginshare {\n\tstaff_teams {\n\t\thelpdesk First Line\n\t}\n}", "quote titles", 3},
		{"mapping bad DN", "loginshare {\n\tuser_groups {\n\t\t\"cn=a,=b\" X\n\t}\n}", "not a valid DN", 3},
		{"mapping default twice", "loginshare {\n\tuser_groups {\n\t\tdefault A\n\t\tdefault B\n\t}\n}", "default given more than once", 4},
		{"mapping twice", "loginshare {\n\tuser_groups {\n\t}\n\tuser_groups {\n\t}\n}", "more than once", 4},
		{"unknown backend", "loginshare {\n\tbackend radius {\n\t}\n}", "loginshare.backends.radius", 2},
		{"backend without name", "loginshare {\n\tbackend\n}", "wrong argument count", 2},
		{"static backend error keeps line", "loginshare {\n\tbackend static {\n\t\tbogus\n\t}\n}", "", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.input)
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.input)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if loc := "Testfile:" + strconv.Itoa(tc.line); !strings.Contains(err.Error(), loc) {
				t.Errorf("error %q does not name %s", err, loc)
			}
		})
	}
}

func TestProvisionRejectsDangerousOrBrokenConfig(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want string
	}{
		{"equal paths", Handler{UserPath: "/x", StaffPath: "/x/"}, "distinct"},
		{"timeout too long", Handler{Timeout: caddy.Duration(120 * time.Second)}, "at most"},
		{"delay longer than timeout", Handler{Timeout: caddy.Duration(time.Second), FailureDelay: caddy.Duration(2 * time.Second)}, "shorter than timeout"},
		{"jitter overflowing delay+jitter", Handler{FailureJitter: caddy.Duration(1<<63 - 1)}, "shorter than timeout"},
		{"field larger than body", Handler{MaxFieldBytes: 4096, MaxBody: 1024}, "larger than max_body"},
		{"percent message", Handler{MessageInvalid: "50%"}, "must not contain"},
		{"bad allow_from", Handler{AllowFrom: []string{"example.com"}}, "allow_from"},
		{"empty secret after placeholders", Handler{Secret: "{env.LOGINSHARE_TEST_UNSET_VARIABLE}"}, "empty"},
		{"bad DN key", Handler{StaffTeams: &Mapping{Map: []MappingLine{{"cn=x,,", "T"}}}}, "staff_teams"},
		{"bad remember_me_hashes", Handler{RememberMeHashes: "yes"}, "remember_me_hashes"},
		{"negative throttle", Handler{Throttle: &ThrottleConfig{PerUser: intp(-1)}}, "negative"},
		{"no backend", Handler{}, "no backend"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
			defer cancel()
			h := tc.h
			err := h.Provision(ctx)
			if err == nil {
				err = h.Validate()
			}
			_ = h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A secret written with an unquoted space (or a placeholder that expands to
// one, as a key=value DSN does) is a wrong argument count; the error names
// the option, file and line, never a token of the secret.
func TestArgumentCountErrorsNeverQuoteASecret(t *testing.T) {
	for name, body := range map[string]string{
		"handler secret":   "secret first hunter2word",
		"bind_password":    "backend ldap {\n\t\tservers ldaps://127.0.0.1\n\t\tbind_password first hunter2word\n\t}",
		"sql dsn":          "backend sql {\n\t\tdriver postgres\n\t\tdsn host=db password=hunter2word\n\t}",
		"redis password":   "throttle {\n\t\tstore redis {\n\t\t\tpassword first hunter2word\n\t\t}\n\t}",
		"redis key_secret": "throttle {\n\t\tstore redis {\n\t\t\tkey_secret first hunter2word\n\t\t}\n\t}",
	} {
		t.Run(name, func(t *testing.T) {
			cf := "http://127.0.0.1:1 {\n\tloginshare {\n\t" + body + "\n\t}\n}\n"
			_, _, err := adaptCaddyfile(cf)
			if err == nil {
				t.Fatalf("accepted:\n%s", cf)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error quotes the secret: %v", err)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("the error names no file and line: %v", err)
			}
		})
	}
}

func adaptCaddyfile(cf string) ([]byte, []caddyconfig.Warning, error) {
	return caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
}
