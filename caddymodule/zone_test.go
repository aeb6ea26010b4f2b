package caddymodule

// Issue 7, point 3: two unrelated sites on one Caddy with equal throttle
// settings shared counters and bans (the state was keyed by the paths and
// the settings only). Throttle state belongs to a zone (design.md, Contract
// additions): the default zone is a digest of user_path, staff_path,
// allow_from, secret and the backend chains' JSON, so handlers differing in
// any of them are independent and handlers equal in all of them (the same
// endpoint on two host names) share; `throttle { zone <name> }` shares on
// purpose; one zone with unequal throttle settings is a provision error.
//
// Every case loads one config with two sites (two ports), bans jdoe on the
// first through per_user 3, then logs jdoe in on the second.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// atkTwoSites loads one config serving handler block a on one port and b on
// another. It returns the adapt or load error instead of failing.
func atkTwoSites(t *testing.T, a, b string) (sa, sb *site, err error) {
	t.Helper()
	pa, pb := freePort(t), freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cfg := testGlobals(logFile, "") + fmt.Sprintf("http://127.0.0.1:%d {\n%s\nrespond \"next handler\" 200\n}\nhttp://127.0.0.1:%d {\n%s\nrespond \"next handler\" 200\n}\n", pa, a, pb, b)
	js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, nil, fmt.Errorf("adapt: %w", err)
	}
	if err := caddy.Load(js, true); err != nil {
		return nil, nil, fmt.Errorf("load: %w", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	waitListening(t, pa)
	waitListening(t, pb)
	return &site{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", pa), port: pa, logFile: logFile},
		&site{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", pb), port: pb, logFile: logFile}, nil
}

// atkZoneHandler is a loginshare block with a counting fake backend that
// knows jdoe/s3cret, per_user 3 and no per_ip. opts go into the handler,
// throttleOpts into its throttle block.
func atkZoneHandler(backend, opts, throttleOpts string) string {
	return fmt.Sprintf(`loginshare {
	%s
	%s
	throttle {
		per_user 3 10m
		per_ip 0
		%s
	}
	backend testfake {
		name %s
		user jdoe s3cret
	}
}`, atkFast, opts, throttleOpts, backend)
}

// atkBanJdoe makes jdoe banned on s (three wrong passwords, then the right
// one refused) at path (which may carry ?key=).
func atkBanJdoe(t *testing.T, s *site, path string) {
	t.Helper()
	for i := 0; i < 3; i++ {
		mustFail(t, s.post(path, form("username", "jdoe", "password", "wrong", "ipaddress", "203.0.113.90")), 200, DefaultMessageInvalid)
	}
	mustFail(t, s.post(path, form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.91")), 200, DefaultMessageInvalid)
}

func TestThrottleZonesSeparateUnrelatedSites(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, b         string
		pathA, pathB string // the user endpoint's URL; default /loginshare/user
	}{
		{
			name: "different backends",
			a:    atkZoneHandler("atk-zone-1a", "", "max_keys 9101"),
			b:    atkZoneHandler("atk-zone-1b", "", "max_keys 9101"),
		},
		{
			name:  "different secret, same backend",
			a:     atkZoneHandler("atk-zone-2", "secret atk-zone-secret-a", "max_keys 9102"),
			b:     atkZoneHandler("atk-zone-2", "secret atk-zone-secret-b", "max_keys 9102"),
			pathA: "/loginshare/user?key=atk-zone-secret-a", pathB: "/loginshare/user?key=atk-zone-secret-b",
		},
		{
			name: "different allow_from, same backend",
			a:    atkZoneHandler("atk-zone-3", "allow_from 127.0.0.1", "max_keys 9103"),
			b:    atkZoneHandler("atk-zone-3", "allow_from 127.0.0.0/8", "max_keys 9103"),
		},
		{
			name:  "different user_path, same backend",
			a:     atkZoneHandler("atk-zone-4", "user_path /helpdesk-a/user", "max_keys 9104"),
			b:     atkZoneHandler("atk-zone-4", "", "max_keys 9104"),
			pathA: "/helpdesk-a/user",
		},
		{
			name: "different staff_path, same backend",
			a:    atkZoneHandler("atk-zone-4s", "staff_path /helpdesk-a/staff", "max_keys 9114"),
			b:    atkZoneHandler("atk-zone-4s", "", "max_keys 9114"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, err := atkTwoSites(t, tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			pathA, pathB := tc.pathA, tc.pathB
			if pathA == "" {
				pathA = "/loginshare/user"
			}
			if pathB == "" {
				pathB = "/loginshare/user"
			}
			atkBanJdoe(t, a, pathA)
			if r := b.post(pathB, form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.92")); r.Doc.Result != "1" {
				t.Errorf("jdoe refused on the other site: the two handlers share throttle state")
			}
		})
	}
}

func TestThrottleZonesShareWhenEqualOrNamed(t *testing.T) {
	t.Run("the same endpoint on two sites shares the default zone", func(t *testing.T) {
		h := atkZoneHandler("atk-zone-5", "", "max_keys 9105")
		a, b, err := atkTwoSites(t, h, h)
		if err != nil {
			t.Fatal(err)
		}
		atkBanJdoe(t, a, "/loginshare/user")
		calls := fakeCount("atk-zone-5")
		mustFail(t, b.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.93")), 200, DefaultMessageInvalid)
		if fakeCount("atk-zone-5") != calls {
			t.Error("the ban on one site did not hold on the identical other one")
		}
	})
	t.Run("an explicit zone shares across different backends", func(t *testing.T) {
		a, b, err := atkTwoSites(t,
			atkZoneHandler("atk-zone-6a", "", "zone atk-shared-6\n\t\tmax_keys 9106"),
			atkZoneHandler("atk-zone-6b", "allow_from 127.0.0.1", "zone atk-shared-6\n\t\tmax_keys 9106"))
		if err != nil {
			t.Fatalf("two handlers naming one zone with equal settings: %v", err)
		}
		atkBanJdoe(t, a, "/loginshare/user")
		calls := fakeCount("atk-zone-6b")
		mustFail(t, b.post("/loginshare/user", form("username", "jdoe", "password", "s3cret", "ipaddress", "203.0.113.94")), 200, DefaultMessageInvalid)
		if fakeCount("atk-zone-6b") != calls {
			t.Error("the ban in zone atk-shared-6 did not hold on the other handler of that zone: its backend was asked")
		}
	})
	t.Run("one zone with unequal settings is a provision error", func(t *testing.T) {
		// Equal settings load (so the error below is about the settings).
		if _, _, err := atkTwoSites(t,
			atkZoneHandler("atk-zone-7a", "", "zone atk-shared-7\n\t\tmax_keys 9107"),
			atkZoneHandler("atk-zone-7b", "", "zone atk-shared-7\n\t\tmax_keys 9107")); err != nil {
			t.Fatalf("two handlers naming one zone with equal settings: %v", err)
		}
		if err := stopCaddy(); err != nil {
			t.Fatal(err)
		}
		_, _, err := atkTwoSites(t,
			atkZoneHandler("atk-zone-7a", "", "zone atk-shared-7\n\t\tmax_keys 9107"),
			strings.Replace(atkZoneHandler("atk-zone-7b", "", "zone atk-shared-7\n\t\tmax_keys 9107"), "per_user 3 10m", "per_user 4 10m", 1))
		switch {
		case err == nil:
			t.Error("one zone with per_user 3 and per_user 4 loaded")
		case !strings.HasPrefix(err.Error(), "load:"):
			t.Errorf("want a provision (load) error, got %v", err)
		case !strings.Contains(strings.ToLower(err.Error()), "zone"):
			t.Errorf("the error does not say it is about the zone: %v", err)
		}
	})
}
