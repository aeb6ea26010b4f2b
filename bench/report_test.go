package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseWrkReadsTheScriptLine(t *testing.T) {
	out := []byte(`Running 10s test @ http://127.0.0.1:1/loginshare/user
  2 threads and 16 connections
Requests/sec:   2000.00
BENCHJSON {"requests":20010,"duration_us":10000000,"good":20000,"bad":10,"connect_errors":0,"read_errors":0,"write_errors":0,"status_errors":0,"timeouts":0,"p50_us":4000,"p90_us":6000,"p99_us":9000,"max_us":20000}
`)
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.sample()
	if err != nil {
		t.Fatal(err)
	}
	if s.rate != 2000 || s.p50 != 4*time.Millisecond || s.p99 != 9*time.Millisecond {
		t.Errorf("sample %+v: logins/s counts successes only, latencies in µs", s)
	}
}

func TestRunsWithFailedLoginsAreRefused(t *testing.T) {
	for _, r := range []wrkResult{
		{DurationUS: 1e6, Good: 1000, Bad: 2},
		{DurationUS: 1e6, Good: 1000, Timeouts: 2},
		{DurationUS: 1e6, Good: 0},
	} {
		if _, err := r.sample(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	if _, err := parseWrk([]byte("Requests/sec: 12\n")); err == nil {
		t.Error("output without the script's line accepted")
	}
}

func TestLimitAndRatiosAreMediansOfPerRunValues(t *testing.T) {
	if got := limit(6000, 20000); math.Abs(got-4615.38) > 0.01 {
		t.Errorf("limit(6000, 20000) = %v", got)
	}
	if median([]float64{3, 1, 2}) != 2 || median([]float64{4, 1, 2, 3}) != 2.5 {
		t.Error("median")
	}
	// Run 2 is slow for everyone; the ratio within each run stays 0.5. The
	// raw reference is the one measured right before the module, and the
	// raw row is the median of every raw measurement.
	r := results{
		"raw@preset": {{rate: 6000}, {rate: 3000}, {rate: 6000}},
		"raw@naive":  {{rate: 6000}, {rate: 3000}, {rate: 3000}},
		"http":       {{rate: 20000}, {rate: 10000}, {rate: 20000}},
		"naive":      {{rate: 300}, {rate: 150}, {rate: 300}},
		"preset":     {{rate: 2307.69, p50: 4 * time.Millisecond, p99: 8 * time.Millisecond}, {rate: 1153.85, p50: 8 * time.Millisecond, p99: 16 * time.Millisecond}, {rate: 2307.69, p50: 4 * time.Millisecond, p99: 8 * time.Millisecond}},
	}
	ts := []*target{{name: "preset", label: "module", ref: "raw", module: true}}
	rows := r.rows(ts, []string{"raw"})
	if rows[0].rate != 4500 {
		t.Errorf("raw row %v, want the median of all six raw measurements (4500)", rows[0].rate)
	}
	m := rows[len(rows)-1]
	if math.IsNaN(m.ofLimit) || math.IsNaN(m.ofRaw) || math.IsNaN(m.ofNaive) || math.IsNaN(m.tail) ||
		math.Abs(m.ofLimit-0.5) > 0.001 || math.Abs(m.ofRaw-2307.69/6000) > 0.001 || math.Abs(m.ofNaive-7.69) > 0.01 || m.tail != 2 {
		t.Errorf("module row %+v", m)
	}
}

func TestParseGoBench(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkHandlerOverhead-2   	   86440	     14100 ns/op	    4051 B/op	      36 allocs/op
BenchmarkHeapAfterDistinctUsernames/refused-2          	       1	2011309166 ns/op	        14.27 MiB-heap-growth
PASS
`)
	ls := parseGoBench(out)
	if len(ls) != 2 || ls[0].name != "BenchmarkHandlerOverhead" || ls[0].metrics["allocs/op"] != 36 || ls[0].metrics["ns/op"] != 14100 ||
		ls[1].name != "BenchmarkHeapAfterDistinctUsernames/refused" || ls[1].metrics["MiB-heap-growth"] != 14.27 {
		t.Errorf("%+v", ls)
	}
}

func TestTableFormatting(t *testing.T) {
	if got := thousands(1234567); got != "1 234 567" {
		t.Errorf("thousands: %q", got)
	}
	if got := thousands(999); got != "999" {
		t.Errorf("thousands: %q", got)
	}
	var b strings.Builder
	writeTable(&b, []row{{label: "x", rate: 10, tail: math.NaN(), limit: math.NaN(), ofLimit: math.NaN(), ofRaw: math.NaN(), ofNaive: math.NaN()}})
	if !strings.Contains(b.String(), "| x | 10 | — | — | — | — | — | — | — |") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestPerRunTableShowsEachRunsRatio(t *testing.T) {
	r := results{
		"raw@preset": {{rate: 6000}, {rate: 3000}},
		"http":       {{rate: 20000}, {rate: 20000}},
		"preset":     {{rate: 4615.38}, {rate: 2307.69}},
	}
	var b strings.Builder
	writePerRun(&b, r, []*target{{name: "http"}, {name: "preset", ref: "raw", module: true}}, []string{"0.1, 0.2, 0.3", "5.0, 3.0, 2.0"})
	out := b.String()
	if !strings.Contains(out, "| 1 | 0.1, 0.2, 0.3 | 6 000 | 20 000 | 1.00 |") || !strings.Contains(out, "| 2 | 5.0, 3.0, 2.0 | 3 000 | 20 000 | 0.88 |") {
		t.Errorf("per-run table:\n%s", out)
	}
}

func TestStolenCPUTime(t *testing.T) {
	if got := stolen(cpuTimes{total: 1000, steal: 10}, cpuTimes{total: 2000, steal: 150}); got != "steal 14 %" {
		t.Errorf("stolen = %q, want steal 14 %%", got)
	}
	if got := stolen(cpuTimes{total: 5}, cpuTimes{total: 5}); got != "steal unknown" {
		t.Errorf("no time passed: %q", got)
	}
	a := readCPUTimes()
	if a.total == 0 || a.steal > a.total {
		t.Fatalf("/proc/stat read as %+v", a)
	}
}

func TestRunOrderRotatesAllButHTTP(t *testing.T) {
	ts := []*target{{name: "http"}, {name: "naive", ref: "raw"}, {name: "preset", ref: "raw"}, {name: "memberof", ref: "raw"}}
	names := func(r int) string {
		var out []string
		for _, t := range runOrder(ts, r) {
			out = append(out, t.name)
		}
		return strings.Join(out, " ")
	}
	for r, want := range []string{"http naive preset memberof", "http preset memberof naive", "http memberof naive preset", "http naive preset memberof"} {
		if got := names(r); got != want {
			t.Errorf("run %d: %s, want %s", r, got, want)
		}
	}
	if ts[1].name != "naive" {
		t.Error("runOrder changed its argument")
	}
}
