package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

//go:embed loginshare.lua
var wrkScript []byte

// wrkResult is the JSON line the Lua script's done() prints.
type wrkResult struct {
	Requests      int64 `json:"requests"`
	DurationUS    int64 `json:"duration_us"`
	Good          int64 `json:"good"`
	Bad           int64 `json:"bad"`
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	StatusErrors  int64 `json:"status_errors"`
	Timeouts      int64 `json:"timeouts"`
	P50US         int64 `json:"p50_us"`
	P90US         int64 `json:"p90_us"`
	P99US         int64 `json:"p99_us"`
	MaxUS         int64 `json:"max_us"`
}

// parseWrk finds the script's line in wrk's output.
func parseWrk(out []byte) (wrkResult, error) {
	var r wrkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "BENCHJSON "); ok {
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, fmt.Errorf("wrk script output %q: %w", rest, err)
			}
			if r.DurationUS <= 0 {
				return r, errors.New("wrk reported no duration")
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("no BENCHJSON line in wrk's output:\n%s", out)
}

// sample turns a wrk result into logins/s and latencies, refusing a run
// in which logins failed: it would not measure what the table says.
func (r wrkResult) sample() (sample, error) {
	errs := r.ConnectErrors + r.ReadErrors + r.WriteErrors + r.StatusErrors + r.Timeouts
	if r.Good == 0 || r.Bad > r.Good/1000 || errs > r.Good/1000 {
		return sample{}, fmt.Errorf("%d logins, %d failure answers, %d socket errors or timeouts (connect %d, read %d, write %d, status %d, timeout %d)",
			r.Good, r.Bad, errs, r.ConnectErrors, r.ReadErrors, r.WriteErrors, r.StatusErrors, r.Timeouts)
	}
	return sample{
		rate: float64(r.Good) / (float64(r.DurationUS) / 1e6),
		p50:  time.Duration(r.P50US) * time.Microsecond,
		p99:  time.Duration(r.P99US) * time.Microsecond,
	}, nil
}

// wrkRunner runs wrk with the harness's script.
type wrkRunner struct {
	bin     string
	script  string // path of loginshare.lua
	threads int
	conns   int
	users   int
}

func (w wrkRunner) run(ctx context.Context, url string, d time.Duration) (sample, error) {
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx, cancel := context.WithTimeout(ctx, d+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, "-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", w.script, url)
	cmd.Env = append(os.Environ(), "BENCH_USERS="+strconv.Itoa(w.users), "BENCH_PASSWORD="+benchPassword, "BENCH_PATH=/loginshare/user")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	r, err := parseWrk(out)
	if err != nil {
		return sample{}, err
	}
	return r.sample()
}
