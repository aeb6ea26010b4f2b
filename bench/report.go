package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// sample is one measurement: logins per second, and for wrk runs the
// latency percentiles.
type sample struct {
	rate     float64
	p50, p99 time.Duration
}

// results holds every measurement of every run: key → one sample per run.
// A target's raw reference is measured right before it in each run, under
// pairKey.
type results map[string][]sample

// pairKey names the raw measurement taken right before t.
func pairKey(t *target) string { return t.ref + "@" + t.name }

// rawRate is a raw reference's median over every measurement of it in run
// (all runs when run < 0).
func (r results) rawRate(ref string, run int) float64 {
	var xs []float64
	for k, ss := range r {
		if !strings.HasPrefix(k, ref+"@") {
			continue
		}
		for i, s := range ss {
			if run < 0 || i == run {
				xs = append(xs, s.rate)
			}
		}
	}
	return median(xs)
}

// limit is what LDAP (or hash) work and HTTP work sharing the same cores
// allow: 1 / (1/raw + 1/http).
func limit(raw, http float64) float64 {
	if raw <= 0 || http <= 0 {
		return 0
	}
	return 1 / (1/raw + 1/http)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// per applies f to each run and returns the median: ratios are taken
// within a run (the same machine state), then the median over runs.
func (r results) per(f func(run int) float64) float64 {
	n := -1
	for _, s := range r {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	xs := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if v := f(i); !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	return median(xs)
}

func (r results) rate(key string, run int) float64 {
	s := r[key]
	if run >= len(s) {
		return math.NaN()
	}
	return s[run].rate
}

// row is one line of the table, every value a median over runs.
type row struct {
	label                          string
	rate                           float64
	p50, p99                       time.Duration
	tail                           float64 // p99/p50
	limit, ofLimit, ofRaw, ofNaive float64
}

// rows computes the table: raw references, HTTP alone, naive, then the
// module configurations, each compared with the raw work it does.
func (r results) rows(ts []*target, rawKeys []string) []row {
	var out []row
	for _, k := range rawKeys {
		out = append(out, row{label: rawLabels[k], rate: r.rawRate(k, -1),
			tail: math.NaN(), limit: math.NaN(), ofLimit: math.NaN(), ofRaw: math.NaN(), ofNaive: math.NaN()})
	}
	for _, t := range ts {
		k := t.name
		w := row{label: t.label, rate: r.per(func(i int) float64 { return r.rate(k, i) }),
			limit: math.NaN(), ofLimit: math.NaN(), ofRaw: math.NaN(), ofNaive: math.NaN()}
		w.p50 = time.Duration(r.per(func(i int) float64 { return float64(r[k][i].p50) }))
		w.p99 = time.Duration(r.per(func(i int) float64 { return float64(r[k][i].p99) }))
		w.tail = r.per(func(i int) float64 { return float64(r[k][i].p99) / float64(r[k][i].p50) })
		if t.ref != "" {
			lim := func(i int) float64 { return limit(r.rate(pairKey(t), i), r.rate("http", i)) }
			w.limit = r.per(lim)
			w.ofLimit = r.per(func(i int) float64 { return r.rate(k, i) / lim(i) })
			w.ofRaw = r.per(func(i int) float64 { return r.rate(k, i) / r.rate(pairKey(t), i) })
			if t.ref != rawBcrypt { // the naive peer does LDAP work, not hashing
				w.ofNaive = r.per(func(i int) float64 { return r.rate(k, i) / r.rate("naive", i) })
			}
		}
		out = append(out, w)
	}
	return out
}

func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| what | logins/s | p50 | p99 | p99/p50 | limit | module/limit | module/raw | module/naive |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, x := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", x.label, thousands(x.rate),
			ms(x.p50), ms(x.p99), ratio(x.tail, 1), thousands(x.limit), ratio(x.ofLimit, 2), ratio(x.ofRaw, 2), ratio(x.ofNaive, 1))
	}
}

// thousands formats a rate with a space between groups of three digits.
func thousands(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func ratio(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// target lines of issue 12, checked against the medians.
func writeTargets(w io.Writer, rows []row, ts []*target, gb goBenchResults) {
	byName := map[string]row{}
	for i, t := range ts {
		byName[t.name] = rows[len(rows)-len(ts)+i]
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	line := func(what string, v float64, target string, ok bool) {
		fmt.Fprintf(w, "- %s: %s (target %s): %s\n", what, ratio(v, 2), target, verdict(ok))
	}
	if x, ok := byName["preset"]; ok {
		line("module/limit, `preset openldap` + `default Registered`", x.ofLimit, "≥ 0.85, goal 0.9", x.ofLimit >= 0.85)
		line("module/naive, same configuration", x.ofNaive, "≥ 15", x.ofNaive >= 15)
	}
	if x, ok := byName["memberof"]; ok {
		line("module/limit, `groups memberof`", x.ofLimit, "≥ 0.8", x.ofLimit >= 0.8)
	}
	if x, ok := byName["search"]; ok {
		line("module/limit3, `groups search`", x.ofLimit, "≥ 0.8", x.ofLimit >= 0.8)
	}
	for _, t := range ts {
		if x := byName[t.name]; t.module {
			line("p99/p50, "+t.name, x.tail, "≤ 3", x.tail <= 3)
		}
	}
	if gb.raw == "" {
		fmt.Fprintln(w, "- handler overhead and heap growth: not measured (-gobench=false)")
		return
	}
	if gb.overheadNs > 0 {
		fmt.Fprintf(w, "- handler overhead, in-memory backend (BenchmarkHandlerOverhead): %.0f allocs/op (target ≤ 30): %s; %.1f µs/op (target ≤ 10): %s\n",
			gb.overheadAllocs, verdict(gb.overheadAllocs <= 30), gb.overheadNs/1000, verdict(gb.overheadNs <= 10000))
	}
	if !math.IsNaN(gb.heapAccepted) {
		fmt.Fprintf(w, "- heap growth after 100 000 logins with distinct usernames and addresses, throttle on (BenchmarkHeapAfterDistinctUsernames): accepted %.1f MiB, refused %.1f MiB (target ≤ 20): %s\n",
			gb.heapAccepted, gb.heapRefused, verdict(gb.heapAccepted <= 20 && gb.heapRefused <= 20))
	}
}

// writePerRun shows what the medians come from: the load when each run
// started and the CPU time the hypervisor gave other guests during it, the
// raw and HTTP rates, and each row's ratio to its limit. Runs that disagree
// widely mean the machine was busy with something else.
func writePerRun(w io.Writer, r results, ts []*target, loads []string) {
	fmt.Fprint(w, "| run | load average at start; CPU stolen by other guests during the run | raw | http |")
	for _, t := range ts {
		if t.ref != "" {
			fmt.Fprintf(w, " %s/limit |", t.name)
		}
	}
	fmt.Fprint(w, "\n|--:|---|--:|--:|")
	for _, t := range ts {
		if t.ref != "" {
			fmt.Fprint(w, "--:|")
		}
	}
	fmt.Fprintln(w)
	for i := range loads {
		fmt.Fprintf(w, "| %d | %s | %s | %s |", i+1, loads[i], thousands(r.rawRate(rawSearchBind, i)), thousands(r.rate("http", i)))
		for _, t := range ts {
			if t.ref != "" {
				fmt.Fprintf(w, " %s |", ratio(r.rate(t.name, i)/limit(r.rate(pairKey(t), i), r.rate("http", i)), 2))
			}
		}
		fmt.Fprintln(w)
	}
}
