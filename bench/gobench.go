package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// goBenchResults are the handler targets measured by caddymodule's Go
// benchmarks (in-memory backend, no network).
type goBenchResults struct {
	overheadNs, overheadAllocs float64
	heapAccepted, heapRefused  float64 // MiB
	raw                        string  // the benchmark lines, for the report
}

// goBenchLine is one result line of `go test -bench`: name and unit → value.
type goBenchLine struct {
	name    string
	metrics map[string]float64
}

// parseGoBench reads the result lines (name, iterations, value-unit pairs).
func parseGoBench(out []byte) []goBenchLine {
	var lines []goBenchLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		l := goBenchLine{name: f[0], metrics: map[string]float64{}}
		if i := strings.LastIndexByte(l.name, '-'); i > 0 { // the -GOMAXPROCS suffix
			if _, err := strconv.Atoi(l.name[i+1:]); err == nil {
				l.name = l.name[:i]
			}
		}
		for j := 2; j+1 < len(f); j += 2 {
			if v, err := strconv.ParseFloat(f[j], 64); err == nil {
				l.metrics[f[j+1]] = v
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// runGoBenchmarks compiles caddymodule's tests once and runs the overhead
// and heap benchmarks, with nothing else running.
func runGoBenchmarks(ctx context.Context, modRoot, root string, quick bool) (goBenchResults, error) {
	res := goBenchResults{heapAccepted: math.NaN(), heapRefused: math.NaN()}
	bin := filepath.Join(root, "caddymodule.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./caddymodule")
	build.Dir = modRoot
	if out, err := build.CombinedOutput(); err != nil {
		return res, fmt.Errorf("go test -c ./caddymodule: %v\n%s", err, out)
	}
	overheadTime, count := "1s", "3"
	if quick {
		overheadTime, count = "2000x", "1"
	}
	run := func(bench, benchtime, count string) ([]goBenchLine, error) {
		cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime, "-test.count", count)
		cmd.Dir = filepath.Join(modRoot, "caddymodule")
		cmd.Env = append(os.Environ(), "TMPDIR="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", bench, err, out)
		}
		lines := parseGoBench(out)
		for _, l := range lines {
			res.raw += fmt.Sprintf("%s %v\n", l.name, l.metrics)
		}
		return lines, nil
	}
	lines, err := run("^BenchmarkHandlerOverhead$", overheadTime, count)
	if err != nil {
		return res, err
	}
	var ns, allocs []float64
	for _, l := range lines {
		ns = append(ns, l.metrics["ns/op"])
		allocs = append(allocs, l.metrics["allocs/op"])
	}
	res.overheadNs, res.overheadAllocs = median(ns), median(allocs)
	if lines, err = run("^BenchmarkHeapAfterDistinctUsernames$", "1x", "1"); err != nil {
		return res, err
	}
	for _, l := range lines {
		switch l.name {
		case "BenchmarkHeapAfterDistinctUsernames/accepted":
			res.heapAccepted = l.metrics["MiB-heap-growth"]
		case "BenchmarkHeapAfterDistinctUsernames/refused":
			res.heapRefused = l.metrics["MiB-heap-growth"]
		}
	}
	return res, nil
}
