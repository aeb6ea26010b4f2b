package scaleout

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/redis/go-redis/v9"

	// The plugin as xcaddy builds it: loginshare.go registers every module.
	_ "github.com/kayako-loginshare/caddy-loginshare"
	"github.com/kayako-loginshare/caddy-loginshare/internal/redistest"
)

// asCaddy makes the test binary run as `caddy` (Caddy's own main with this
// plugin and the counting backend registered).
const asCaddy = "LOGINSHARE_SCALEOUT_AS_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(asCaddy) == "1" {
		caddycmd.Main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	storeTimeout = 250 * time.Millisecond
	ban          = 2 * time.Second
	window       = 3 * time.Second
	perUser      = 5
)

// config is one instance's Caddyfile: three endpoints on one Redis, one per
// on_error, each its own zone (the paths and stores differ).
func config(port int, redisAddr, logFile, countFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin off
	persist_config off
	auto_https off
	skip_install_trust
	log {
		output file %s
		level INFO
	}
}
http://127.0.0.1:%d {
`, logFile, port)
	for _, mode := range []string{"local", "open", "closed"} {
		fmt.Fprintf(&b, `	loginshare {
		user_path /%[1]s/user
		staff_path /%[1]s/staff
		allow_from 127.0.0.1
		failure_delay 1ms
		failure_jitter 1ms
		user_groups {
			default Registered
		}
		throttle {
			per_user %[2]d %[3]s
			per_ip 0
			ban %[4]s
			store redis {
				url redis://%[5]s/0
				password {env.REDIS_PASSWORD}
				timeout %[6]s
				on_error %[1]s
			}
		}
		backend scaleoutcount {
			file %[7]s
			tag %[1]s
		}
	}
`, mode, perUser, window, ban, redisAddr, storeTimeout, countFile)
	}
	b.WriteString("\trespond 404\n}\n")
	return b.String()
}

type instance struct {
	name    string
	base    string
	logFile string
	stderr  string
	cmd     *exec.Cmd
	done    chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the test binary as `caddy run` with the instance's config and
// waits until it answers; the process is stopped by its PID when t ends.
func start(t *testing.T, name string, rs *redistest.Server, countFile string) *instance {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	in := &instance{name: name, base: "http://127.0.0.1:" + strconv.Itoa(port),
		logFile: filepath.Join(dir, "caddy.log"), stderr: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	cfgFile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgFile, []byte(config(port, rs.Addr, in.logFile, countFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut, err := os.Create(in.stderr)
	if err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command(os.Args[0], "run", "--config", cfgFile, "--adapter", "caddyfile")
	in.cmd.Env = append(os.Environ(), asCaddy+"=1", "REDIS_PASSWORD="+rs.Password,
		"HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	in.cmd.Stdout, in.cmd.Stderr = errOut, errOut
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = in.cmd.Wait(); errOut.Close(); close(in.done) }()
	t.Cleanup(func() { in.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(in.base + "/nothing")
		if err == nil {
			resp.Body.Close()
			return in
		}
		select {
		case <-in.done:
			out, _ := os.ReadFile(in.stderr)
			t.Fatalf("%s exited at start:\n%s", name, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after 10 s.
func (in *instance) stop(t *testing.T) {
	select {
	case <-in.done:
		return
	default:
	}
	_ = syscall.Kill(in.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s ignored SIGTERM; killing PID %d", in.name, in.cmd.Process.Pid)
		_ = syscall.Kill(in.cmd.Process.Pid, syscall.SIGKILL)
		<-in.done
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// login posts one user login and returns the answer's body and how long it took.
func (in *instance) login(t *testing.T, mode, user, password string) (string, time.Duration) {
	t.Helper()
	f := url.Values{"username": {user}, "password": {password}, "ipaddress": {"192.0.2.10"}}
	begin := time.Now()
	resp, err := client.PostForm(in.base+"/"+mode+"/user", f)
	if err != nil {
		t.Fatalf("%s: %v", in.name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body), time.Since(begin)
}

func ok(body string) bool { return strings.Contains(body, "<result>1</result>") }

// counts reads the backend's call file: calls per "<mode> <user>".
func counts(t *testing.T, file string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" {
			m[l]++
		}
	}
	return m
}

func TestTwoInstancesShareOneRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	countFile := filepath.Join(t.TempDir(), "calls")
	a := start(t, "caddy-a", rs, countFile)
	b := start(t, "caddy-b", rs, countFile)
	both := []*instance{a, b}
	reached := func(mode, user string) int { return counts(t, countFile)[mode+" "+user] }

	t.Run("failures spread over both ban on both", func(t *testing.T) {
		for i := 0; i < perUser; i++ {
			if body, _ := both[i%2].login(t, "local", "alice", "wrong"); ok(body) {
				t.Fatalf("wrong password accepted: %s", body)
			}
		}
		if n := reached("local", "alice"); n != perUser {
			t.Fatalf("backend saw %d failures, want %d", n, perUser)
		}
		for _, in := range both {
			if body, _ := in.login(t, "local", "alice", "right"); ok(body) {
				t.Errorf("%s let a banned user in: %s", in.name, body)
			}
		}
		if n := reached("local", "alice"); n != perUser {
			t.Errorf("backend reached during the ban: %d calls, want %d", n, perUser)
		}
	})

	t.Run("another username is unaffected", func(t *testing.T) {
		if body, _ := a.login(t, "local", "bob", "wrong"); ok(body) {
			t.Fatal(body)
		}
		if body, _ := b.login(t, "local", "bob", "right"); !ok(body) {
			t.Errorf("bob refused on %s: %s", b.name, body)
		}
		if n := reached("local", "bob"); n != 2 {
			t.Errorf("backend saw %d of bob's logins, want 2", n)
		}
	})

	t.Run("a burst over both passes at most per_user", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(in *instance) {
				defer wg.Done()
				in.login(t, "local", "carol", "wrong")
			}(both[i%2])
		}
		wg.Wait()
		if n := reached("local", "carol"); n > perUser || n == 0 {
			t.Errorf("backend saw %d of a 50-login burst, want 1..%d", n, perUser)
		}
	})

	t.Run("no username in Redis", func(t *testing.T) {
		rc := redis.NewClient(&redis.Options{Addr: rs.Addr, Password: rs.Password})
		defer rc.Close()
		ctx := context.Background()
		var all []string
		iter := rc.Scan(ctx, 0, "*", 100).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			all = append(all, k)
			switch rc.Type(ctx, k).Val() {
			case "zset":
				all = append(all, rc.ZRange(ctx, k, 0, -1).Val()...)
			case "string":
				all = append(all, rc.Get(ctx, k).Val())
			default:
				t.Errorf("unexpected key type for %s", k)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		if len(all) == 0 {
			t.Fatal("no keys in Redis: the instances do not use it")
		}
		for _, s := range all {
			for _, name := range []string{"alice", "bob", "carol", "192.0.2.10"} {
				if strings.Contains(strings.ToLower(s), name) {
					t.Errorf("Redis holds %q in clear: %s", name, s)
				}
			}
			if !strings.HasPrefix(s, "loginshare:") && len(s) > 40 {
				t.Errorf("unexpected value %q", s)
			}
		}
	})

	t.Run("the ban expires on both", func(t *testing.T) {
		time.Sleep(window + 300*time.Millisecond) // the ban (2s) and the window (3s)
		for _, in := range both {
			if body, _ := in.login(t, "local", "alice", "right"); !ok(body) {
				t.Errorf("%s still refuses alice after the ban: %s", in.name, body)
			}
		}
	})

	t.Run("Redis stopped", func(t *testing.T) {
		rs.StopServer()
		slow := func(d time.Duration) bool { return d > storeTimeout+250*time.Millisecond }

		// local: each instance throttles on its own.
		for i := 0; i < perUser+2; i++ {
			if body, d := a.login(t, "local", "dave", "wrong"); ok(body) || slow(d) {
				t.Errorf("local: attempt %d took %s: %s", i, d, body)
			}
		}
		if n := reached("local", "dave"); n != perUser {
			t.Errorf("local: backend saw %d of dave's failures on %s, want %d (its own memory)", n, a.name, perUser)
		}
		if body, d := b.login(t, "local", "dave", "right"); !ok(body) || slow(d) {
			t.Errorf("local: %s shares %s's outage ban (%s): %s", b.name, a.name, d, body)
		}

		// open: nothing throttles.
		for i := 0; i < perUser+3; i++ {
			if body, d := both[i%2].login(t, "open", "erin", "wrong"); ok(body) || slow(d) {
				t.Errorf("open: attempt %d took %s: %s", i, d, body)
			}
		}
		if n := reached("open", "erin"); n != perUser+3 {
			t.Errorf("open: backend saw %d of %d attempts", n, perUser+3)
		}

		// closed: every login is unavailable, the backend untouched.
		for _, in := range both {
			body, d := in.login(t, "closed", "frank", "right")
			if ok(body) || !strings.Contains(body, "Authentication service unavailable") || slow(d) {
				t.Errorf("closed: %s answered in %s: %s", in.name, d, body)
			}
		}
		if n := reached("closed", "frank"); n != 0 {
			t.Errorf("closed: backend reached %d times", n)
		}
	})

	t.Run("Redis restarted: sharing resumes", func(t *testing.T) {
		if err := rs.Restart(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond) // the store skips Redis for a second after a failure
		for i := 0; i < perUser; i++ {
			both[i%2].login(t, "local", "grace", "wrong")
		}
		for _, in := range both {
			if body, _ := in.login(t, "local", "grace", "right"); ok(body) {
				t.Errorf("%s: grace not banned after restart: %s", in.name, body)
			}
		}
		if n := reached("local", "grace"); n != perUser {
			t.Errorf("backend saw %d of grace's logins, want %d", n, perUser)
		}
		if body, _ := b.login(t, "closed", "heidi", "right"); !ok(body) {
			t.Errorf("closed: not back after restart: %s", body)
		}
	})

	t.Run("logs", func(t *testing.T) {
		for _, in := range both {
			in.stop(t)
			logs, _ := os.ReadFile(in.logFile)
			errs, _ := os.ReadFile(in.stderr)
			all := string(logs) + string(errs)
			if strings.Contains(all, rs.Password) {
				t.Errorf("%s logged the Redis password", in.name)
			}
			if !strings.Contains(string(logs), "redis throttle store failed") || !strings.Contains(string(logs), "shared throttling resumed") {
				t.Errorf("%s: no WARN for the outage or INFO for the recovery in its log", in.name)
			}
			for _, l := range strings.Split(string(errs), "\n") {
				if strings.HasPrefix(l, "redis: ") {
					t.Errorf("%s: go-redis printed on stderr: %s", in.name, l)
				}
			}
		}
	})
}

// TestTwoInstanceExampleValidatesWithoutRedis: `caddy adapt --validate` of
// the shipped example provisions the redis store (and its pooled client)
// with no Redis anywhere: Provision does no I/O, and the probe ends with
// the config.
func TestTwoInstanceExampleValidatesWithoutRedis(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "adapt", "--config", filepath.Join("..", "..", "examples", "Caddyfile.two-instances"), "--adapter", "caddyfile", "--validate")
	cmd.Env = append(os.Environ(), asCaddy+"=1", "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"LOGINSHARE_KEY=k", "LDAP_BIND_PASSWORD=p", "REDIS_PASSWORD=validation-pw", "THROTTLE_KEY=t")
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("adapt --validate: %v\n%s", err, out)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("validation took %s", d)
	}
	if strings.Contains(string(out), "validation-pw") {
		t.Errorf("the password appears in the output:\n%s", out)
	}
	if !strings.Contains(string(out), `"backend":"redis"`) {
		t.Errorf("adapted JSON has no redis store:\n%s", out)
	}
}
