// Command bench is the benchmark harness of issue 12. In one run on one
// machine it starts a private slapd with 1 000 accounts over ldaps://,
// builds cmd/caddy once, and measures side by side:
//
//   - raw: go-ldap doing one login's LDAP work in this process (service
//     search + user bind on persistent connections; with the group search
//     of `groups search`; with the walk of `groups nested`), and bcrypt
//     comparisons for the static backend;
//   - http: the HTTP cost alone, a Caddy `respond` site under the same load;
//   - naive: a typical PHP LoginShare script (connect, service bind, search,
//     user bind per request) under php-fpm behind Caddy's php_fastcgi;
//   - the module end to end through a real Caddy, for each configuration.
//
// Load comes from wrk (-t2 -c16 by default) with a Lua script that rotates
// over the accounts. It prints a Markdown table with logins/s, p50, p99,
// the limit 1/(1/raw + 1/http) and the module's ratios, each the median
// of -runs runs (ratios taken within a run), then issue 12's targets and
// the handler benchmarks of caddymodule.
//
// Run it from the repository root:
//
//	go run ./bench           # the full run (about 8 minutes)
//	go run ./bench -quick    # a smoke run (about a minute)
//
// It installs nothing. It needs Debian's wrk, php-fpm, php-ldap and slapd
// and says so when one is missing. Everything listens on 127.0.0.1; every
// process it starts is stopped by PID and its temporary directory removed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

const debianPackages = "wrk php-fpm php-ldap slapd"

type options struct {
	dur, warmup time.Duration
	runs        int
	threads     int
	conns       int
	users       int
	configs     []string
	fpmWorkers  int
	bcryptCost  int
	profile     string
	goBench     bool
	quick       bool
	serverKey   string
	poolSize    int
	gogc        string
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	var configs string
	flag.DurationVar(&o.dur, "d", 10*time.Second, "duration of each measurement")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load on each site before the first run (not measured)")
	flag.IntVar(&o.runs, "runs", 3, "runs; the table shows medians")
	flag.IntVar(&o.threads, "t", 2, "wrk threads")
	flag.IntVar(&o.conns, "c", 16, "wrk connections, and goroutines of the raw loops")
	flag.IntVar(&o.users, "users", 1000, "accounts in the directory; the load rotates over them")
	flag.StringVar(&configs, "configs", strings.Join(moduleConfigs, ","), "module configurations to measure: "+strings.Join(moduleConfigs, ", "))
	flag.IntVar(&o.fpmWorkers, "fpm-workers", 16, "php-fpm workers of the naive peer (pm = static)")
	flag.IntVar(&o.bcryptCost, "bcrypt-cost", 10, "bcrypt cost of the static backend's hashes (the README's examples use 10)")
	flag.StringVar(&o.profile, "profile", "", "directory for CPU profiles of each module Caddy, from one extra run (admin API on loopback)")
	flag.BoolVar(&o.goBench, "gobench", true, "also run caddymodule's handler-overhead and heap benchmarks")
	flag.StringVar(&o.serverKey, "server-key", "rsa2048", "key type of slapd's CA and certificate: rsa2048 (as AD Certificate Services and the usual openssl recipes issue) or p256; it sets what each new TLS connection costs, which the naive peer pays per request")
	flag.StringVar(&o.gogc, "gogc", "", "GOGC for every Caddy process (\"\": Go's default, 100)")
	flag.IntVar(&o.poolSize, "pool-size", 0, "pool_size and bind_pool_size of the module's LDAP sites (0: the defaults)")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: -d 2s -warmup 1s -runs 1, shorter Go benchmarks")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [flags]   (from the repository root)\nneeds the Debian packages: %s\n", debianPackages)
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			o.dur = 2 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
		if !set["runs"] {
			o.runs = 1
		}
	}
	for _, c := range strings.Split(configs, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !slices.Contains(moduleConfigs, c) {
			fmt.Fprintf(os.Stderr, "bench: unknown configuration %q (known: %s)\n", c, strings.Join(moduleConfigs, ", "))
			return 2
		}
		o.configs = append(o.configs, c)
	}
	if o.serverKey != "rsa2048" && o.serverKey != "p256" {
		fmt.Fprintf(os.Stderr, "bench: -server-key %q: want rsa2048 or p256\n", o.serverKey)
		return 2
	}
	if o.runs < 1 || o.conns < 1 || o.threads < 1 || o.users < groupCount || o.dur < time.Second {
		fmt.Fprintln(os.Stderr, "bench: -runs, -c, -t must be ≥ 1, -users ≥ 10, -d ≥ 1s")
		return 2
	}

	tools, err := findTools()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := harness(ctx, o, tools); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted; every process it started is stopped")
			return 130
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

type tools struct{ wrk, fpm, modRoot string }

// findTools checks for the Debian packages the harness needs, and finds
// the module it builds.
func findTools() (tools, error) {
	var t tools
	var missing []string
	var err error
	if t.wrk, err = exec.LookPath("wrk"); err != nil {
		missing = append(missing, "wrk")
	}
	if t.fpm = findFPM(); t.fpm == "" {
		missing = append(missing, "php-fpm", "php-ldap")
	} else if out, err := exec.Command(t.fpm, "-m").Output(); err != nil || !strings.Contains(strings.ToLower(string(out)), "\nldap\n") {
		missing = append(missing, "php-ldap")
	}
	if _, err := os.Stat("/usr/sbin/slapd"); err != nil {
		if _, err := exec.LookPath("slapd"); err != nil {
			missing = append(missing, "slapd")
		}
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("missing Debian packages: %s\nthe harness needs %s; as root:\n"+
			"  echo \"slapd slapd/no_configuration boolean true\" | debconf-set-selections\n"+
			"  apt-get install -y --no-install-recommends %s", strings.Join(missing, " "), debianPackages, debianPackages)
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err != nil || gomod == "" || gomod == os.DevNull {
		return t, fmt.Errorf("run it from the repository: go run ./bench (go env GOMOD: %v)", err)
	} else {
		t.modRoot = filepath.Dir(gomod)
	}
	return t, nil
}

func harness(ctx context.Context, o options, tl tools) (err error) {
	root, err := os.MkdirTemp("", "loginshare-bench-")
	if err != nil {
		return err
	}
	var dir *slapdtest.Server
	defer func() {
		stopAll()
		if dir != nil {
			dir.Close()
		}
		os.RemoveAll(root)
	}()
	progress := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
	loadBefore := loadavg()

	progress("building cmd/caddy")
	caddyBin := filepath.Join(root, "caddy")
	build := exec.CommandContext(ctx, "go", "build", "-o", caddyBin, "./cmd/caddy")
	build.Dir = tl.modRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
	}

	var gb goBenchResults
	if o.goBench {
		progress("Go benchmarks: handler overhead and heap after 100 000 distinct usernames")
		if gb, err = runGoBenchmarks(ctx, tl.modRoot, root, o.quick); err != nil {
			return err
		}
	}

	progress("starting slapd with %d accounts (ldaps://, %s certificate)", o.users, o.serverKey)
	if dir, err = startDirectory(o.users, o.serverKey == "rsa2048"); err != nil {
		return err
	}
	phpRoot, fpmPort, err := startFPM(tl.fpm, root, dir, o.fpmWorkers)
	if err != nil {
		return err
	}
	var hash []byte
	if slices.Contains(o.configs, "static") {
		if hash, err = bcrypt.GenerateFromPassword([]byte(benchPassword), o.bcryptCost); err != nil {
			return err
		}
	}
	ts := targets(dir, phpRoot, fpmPort, o.configs, o.users, string(hash), o.poolSize)
	home := filepath.Join(root, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "BENCH_BIND_PASSWORD="+dir.BindPassword)
	if o.gogc != "" {
		env = append(env, "GOGC="+o.gogc)
	}
	for _, t := range ts {
		if o.profile != "" && t.module {
			if t.adminPort, err = freePort(); err != nil {
				return err
			}
		}
		progress("starting Caddy: %s", t.name)
		if err := t.start(caddyBin, root, env); err != nil {
			return err
		}
		if err := t.probe(); err != nil {
			return err
		}
	}

	script := filepath.Join(root, "loginshare.lua")
	if err := os.WriteFile(script, wrkScript, 0o600); err != nil {
		return err
	}
	w := wrkRunner{bin: tl.wrk, script: script, threads: o.threads, conns: o.conns, users: o.users}
	if o.warmup > 0 {
		for _, t := range ts {
			progress("warming up %s", t.name)
			if _, err := w.run(ctx, t.url(), o.warmup); err != nil {
				return fmt.Errorf("warm-up of %s: %w", t.name, err)
			}
		}
	}

	rawKeys := []string{rawSearchBind}
	for _, t := range ts {
		if t.ref != "" && !slices.Contains(rawKeys, t.ref) {
			rawKeys = append(rawKeys, t.ref)
		}
	}
	res := results{}
	var loads []string
	for r := 0; r < o.runs; r++ {
		loads = append(loads, loadavg())
		stolenBefore := readCPUTimes()
		for _, t := range runOrder(ts, r) {
			if t.ref != "" {
				// Its raw reference right before it: the machine's speed
				// drifts over minutes, and a ratio is only as good as the
				// two measurements' nearness in time.
				var s sample
				if t.ref == rawBcrypt {
					s, err = rawHash(ctx, hash, o.conns, o.dur)
				} else {
					s, err = rawLDAP(ctx, dir, t.ref, o.conns, o.users, o.dur)
				}
				if err != nil {
					return fmt.Errorf("run %d, %s: %w", r+1, t.ref, err)
				}
				res[pairKey(t)] = append(res[pairKey(t)], s)
				progress("run %d/%d  %-8s %8.0f logins/s  (before %s)", r+1, o.runs, t.ref, s.rate, t.name)
			}
			s, err := w.run(ctx, t.url(), o.dur)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w\n%s", r+1, t.name, err, tail(t.log))
			}
			res[t.name] = append(res[t.name], s)
			progress("run %d/%d  %-8s %8.0f logins/s  p50 %s  p99 %s", r+1, o.runs, t.name, s.rate, ms(s.p50), ms(s.p99))
		}
		loads[r] += "; " + stolen(stolenBefore, readCPUTimes())
	}
	loadAfter := loadavg()
	// Profiles come from one more run under the same load, not counted: a
	// sampling profiler costs the process it samples.
	profiles := map[string]string{}
	for _, t := range ts {
		if t.adminPort == 0 {
			continue
		}
		progress("profiling %s", t.name)
		file := filepath.Join(o.profile, t.name+".pprof")
		prof := make(chan error, 1)
		go func() { prof <- fetchProfile(ctx, t.adminPort, o.dur-time.Second, file) }()
		if _, err := w.run(ctx, t.url(), o.dur); err != nil {
			return fmt.Errorf("profiled run of %s: %w", t.name, err)
		}
		if err := <-prof; err != nil {
			return fmt.Errorf("profile of %s: %w", t.name, err)
		}
		profiles[t.name] = file
	}
	stopAll()

	out := os.Stdout
	fmt.Fprintf(out, "\n## caddy-loginshare benchmark (bench/)\n\n")
	fmt.Fprintf(out, "%d CPUs, %s; slapd with %d accounts over ldaps:// (%s certificate); wrk -t%d -c%d -d%s; raw loops %d goroutines; medians of %d run(s).\n",
		runtime.NumCPU(), runtime.Version(), o.users, o.serverKey, o.threads, o.conns, o.dur, o.conns, o.runs)
	if o.poolSize > 0 {
		fmt.Fprintf(out, "LDAP sites with pool_size %d and bind_pool_size %d.\n", o.poolSize, o.poolSize)
	}
	if o.gogc != "" {
		fmt.Fprintf(out, "Every Caddy process with GOGC=%s.\n", o.gogc)
	}
	fmt.Fprintf(out, "Load average before: %s; after: %s.\n\n", loadBefore, loadAfter)
	rows := res.rows(ts, rawKeys)
	writeTable(out, rows)
	fmt.Fprintf(out, "\nlimit = 1 / (1/raw + 1/http), with the raw work that configuration does (search + bind; + group search for `groups search`; + the group walk for `nested`; bcrypt for static). module/limit, module/raw and module/naive divide the row's logins/s by them, within each run, then take the median.\n\n")
	fmt.Fprintln(out, "Per run:")
	fmt.Fprintln(out)
	writePerRun(out, res, ts, loads)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Targets of issue 12:")
	writeTargets(out, rows, ts, gb)
	if gb.raw != "" {
		fmt.Fprintf(out, "\nGo benchmarks (caddymodule, in-memory backend):\n\n```\n%s```\n", gb.raw)
	}
	for _, t := range ts {
		file, ok := profiles[t.name]
		if !ok {
			continue
		}
		fmt.Fprintf(out, "\nCPU profile of Caddy, %s (an extra run after the measured ones): %s\n", t.name, file)
		if t.name == "preset" || len(o.configs) == 1 {
			for _, view := range [][]string{{"-top", "-nodecount=20"}, {"-top", "-cum", "-nodecount=40"}} {
				top := exec.Command("go", append(append([]string{"tool", "pprof"}, view...), caddyBin, file)...)
				top.Dir = tl.modRoot
				b, err := top.CombinedOutput()
				if err != nil {
					return fmt.Errorf("go tool pprof: %v\n%s", err, b)
				}
				fmt.Fprintf(out, "\n```\n%s```\n", b)
			}
		}
	}
	return nil
}

// fetchProfile saves a CPU profile of d from a Caddy's admin endpoint.
func fetchProfile(ctx context.Context, port int, d time.Duration, file string) error {
	secs := int(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadavg is the machine's 1, 5 and 15 minute load averages, as uptime
// shows them.
// runOrder is the order of run r: HTTP alone first, then the other sites
// rotated by r. A site measured right after another module site came out
// up to 0.2 of its limit lower than when it came first (the same code,
// both orders tried), so no site keeps one position in every run.
func runOrder(ts []*target, r int) []*target {
	var first, rest []*target
	for _, t := range ts {
		if t.ref == "" {
			first = append(first, t)
		} else {
			rest = append(rest, t)
		}
	}
	if n := len(rest); n > 0 {
		k := r % n
		rest = append(rest[k:], rest[:k]...)
	}
	return append(first, rest...)
}

// cpuTimes are /proc/stat's first line: all CPU time and the part the
// hypervisor gave to other guests (steal), in clock ticks.
type cpuTimes struct{ total, steal uint64 }

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var t cpuTimes
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTimes{}
		}
		t.total += n
		if i == 7 { // user nice system idle iowait irq softirq steal
			t.steal = n
		}
	}
	return t
}

// stolen says how much of the CPU time between a and b other guests of the
// host took: on a virtual machine, the part of the noise no process here
// caused.
func stolen(a, b cpuTimes) string {
	if b.total <= a.total {
		return "steal unknown"
	}
	return fmt.Sprintf("steal %.0f %%", 100*float64(b.steal-a.steal)/float64(b.total-a.total))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
