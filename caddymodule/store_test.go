package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/kayako-loginshare/caddy-loginshare/internal/throttle/redisstore"
)

func TestCaddyfileThrottleStore(t *testing.T) {
	good := []struct {
		name, input, want string
	}{
		{"memory", `loginshare {
			throttle {
				store memory
			}
		}`, `{"backend":"memory"}`},
		{"redis url and password", `loginshare {
			throttle {
				per_user 5 10m
				store redis {
					url {env.REDIS_URL}
					password {env.REDIS_PASSWORD}
					key_prefix acme:
					key_secret {file./run/secrets/throttle}
					timeout 300ms
					on_error closed
				}
			}
		}`, `{"backend":"redis","key_prefix":"acme:","key_secret":"{file./run/secrets/throttle}","on_error":"closed","password":"{env.REDIS_PASSWORD}","timeout":300000000,"url":"{env.REDIS_URL}"}`},
		{"redis cluster with tls", `loginshare {
			throttle {
				store redis {
					addresses 10.0.0.1:6379 10.0.0.2:6379
					cluster
					username caddy
					pool_size 20
					tls {
						ca_file /etc/redis/ca.pem
						server_name redis.internal
						client_cert /etc/c.pem /etc/k.pem
					}
				}
			}
		}`, `{"addresses":["10.0.0.1:6379","10.0.0.2:6379"],"backend":"redis","cluster":true,"pool_size":20,"tls":{"ca_file":"/etc/redis/ca.pem","client_cert":"/etc/c.pem","client_key":"/etc/k.pem","server_name":"redis.internal"},"username":"caddy"}`},
		{"sentinel", `loginshare {
			throttle {
				store redis {
					addresses 10.0.0.1:26379
					sentinel_master mymaster
				}
			}
		}`, `{"addresses":["10.0.0.1:26379"],"backend":"redis","sentinel_master":"mymaster"}`},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parse(t, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if h.Throttle == nil || string(h.Throttle.StoreRaw) != tc.want {
				t.Fatalf("store JSON\n got %s\nwant %s", h.Throttle.StoreRaw, tc.want)
			}
		})
	}

	bad := []struct {
		name, input, want string
	}{
		{"no store name", "loginshare {\n throttle {\n store\n }\n}", "Testfile:3"},
		{"unknown store", "loginshare {\n throttle {\n store etcd\n }\n}", `unknown throttle store "etcd" (want memory or redis), at Testfile:3`},
		{"store twice", "loginshare {\n throttle {\n store memory\n store memory\n }\n}", "throttle store given more than once, at Testfile:4"},
		{"memory takes no block", "loginshare {\n throttle {\n store memory {\n max 1\n }\n }\n}", `store memory takes no options, not "max", at Testfile:4`},
		{"memory takes no args", "loginshare {\n throttle {\n store memory x\n }\n}", "wrong argument count or unexpected line ending after 'x', at Testfile:3"},
		{"redis without url", "loginshare {\n throttle {\n store redis {\n key_prefix x:\n }\n }\n}", "redis: url or addresses required, at Testfile:5"},
		{"redis url and addresses", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n addresses h:2\n }\n }\n}", "redis: url and addresses are exclusive, at Testfile:6"},
		{"redis bad scheme", "loginshare {\n throttle {\n store redis {\n url http://h:1\n }\n }\n}", "redis url must start with redis:// or rediss:// (or be a placeholder), at Testfile:4"},
		{"redis bad on_error", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n on_error maybe\n }\n }\n}", `on_error "maybe": want local, open or closed, at Testfile:5`},
		{"redis zero timeout", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n timeout 0\n }\n }\n}", "timeout must be positive (0 would mean the default), at Testfile:5"},
		{"redis bad timeout", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n timeout soon\n }\n }\n}", `"soon" is not a duration, at Testfile:5`},
		{"redis unknown option", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n db 3\n }\n }\n}", `unknown redis store option "db", at Testfile:5`},
		{"redis option twice", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n url redis://h:2\n }\n }\n}", "url given more than once, at Testfile:5"},
		{"redis empty password", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n password \"\"\n }\n }\n}", "password must not be empty, at Testfile:5"},
		{"redis tls half cert", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n tls {\n client_cert /c.pem\n }\n }\n }\n}", "client_cert wants <cert.pem> <key.pem>, at Testfile:6"},
		{"redis tls unknown", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n tls {\n verify no\n }\n }\n }\n}", `unknown redis tls option "verify", at Testfile:6`},
		{"redis bad pool_size", "loginshare {\n throttle {\n store redis {\n url redis://h:1\n pool_size -1\n }\n }\n}", `"-1" is not a positive whole number, at Testfile:5`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRedisStoreProvisionChecks: what only Provision can check (JSON
// configs, resolved placeholders), without a Redis: Provision does no I/O.
func TestRedisStoreProvisionChecks(t *testing.T) {
	t.Setenv("LOGINSHARE_TEST_REDIS_EMPTY", "")
	for _, tc := range []struct{ name, json, want string }{
		{"bad on_error", `{"url":"redis://127.0.0.1:1","on_error":"maybe"}`, `on_error "maybe"`},
		{"no address", `{}`, "url or addresses required"},
		{"empty url", `{"url":"{env.LOGINSHARE_TEST_REDIS_EMPTY}"}`, "url is empty after resolving placeholders"},
		{"empty password", `{"url":"redis://127.0.0.1:1","password":"{env.LOGINSHARE_TEST_REDIS_EMPTY}"}`, "password is empty after resolving placeholders"},
		{"bad url keeps password out", `{"url":"redis://:hunter2@[::1"}`, "not a valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(redisstore.Module)
			if err := json.Unmarshal([]byte(tc.json), m); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
			defer cancel()
			err := m.Provision(ctx)
			_ = m.Cleanup()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
