package loginsharecmd

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// logCapture holds what the provisioned modules log. A module provisioned
// outside a running config logs through a development logger opened on
// os.Stderr at that moment (caddy.Context.Logger without a config): DEBUG
// and up, with stack traces. The command points os.Stderr at a pipe while it
// provisions, logs in and cleans up, and shows the WARN and ERROR entries in
// its report instead.
type logCapture struct {
	orig *os.File
	w    *os.File
	done chan struct{}

	mu    sync.Mutex
	lines []string
}

var captureMu sync.Mutex // one capture at a time (tests run the command in-process)

// captureStderr starts a capture; nil when no pipe could be made (the logs
// then go to the real stderr).
func captureStderr() *logCapture {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	captureMu.Lock()
	c := &logCapture{orig: os.Stderr, w: w, done: make(chan struct{})}
	os.Stderr = w
	go func() {
		defer close(c.done)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
	}()
	return c
}

// stop restores os.Stderr and returns the entries logged at WARN or above.
// Loggers made during the capture keep writing to the closed pipe, which
// fails quietly.
func (c *logCapture) stop() []logEntry {
	if c == nil {
		return nil
	}
	os.Stderr = c.orig
	captureMu.Unlock()
	c.w.Close()
	<-c.done
	var out []logEntry
	for _, l := range c.lines {
		if e, ok := parseDevLogLine(l); ok && e.Level != "DEBUG" && e.Level != "INFO" {
			out = append(out, e)
		}
	}
	return out
}

// logEntry is one log line of a module.
type logEntry struct {
	Level   string          `json:"level"`
	Logger  string          `json:"logger,omitempty"`
	Message string          `json:"msg"`
	Fields  json.RawMessage `json:"fields,omitempty"`
}

var devLogStart = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+\t(DEBUG|INFO|WARN|ERROR|DPANIC|PANIC|FATAL)\t`)
var callerToken = regexp.MustCompile(`\.go:\d+$`)

// parseDevLogLine reads zap's development console format: time, level,
// [logger,] caller, message[, JSON fields], tab-separated. Stack-trace lines
// are not entries.
func parseDevLogLine(l string) (logEntry, bool) {
	m := devLogStart.FindStringSubmatch(l)
	if m == nil {
		return logEntry{}, false
	}
	e := logEntry{Level: m[1]}
	rest := strings.Split(l[len(m[0]):], "\t")
	if len(rest) > 1 && !callerToken.MatchString(rest[0]) && callerToken.MatchString(rest[1]) {
		e.Logger, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 && callerToken.MatchString(rest[0]) {
		rest = rest[1:]
	}
	if n := len(rest); n > 1 && strings.HasPrefix(rest[n-1], "{") && json.Valid([]byte(rest[n-1])) {
		e.Fields = json.RawMessage(rest[n-1])
		rest = rest[:n-1]
	}
	e.Message = strings.Join(rest, "\t")
	return e, true
}

// secretsOf lists the resolved secrets of a handler's JSON (bind_password,
// dsn and its password, secret), so that no output can carry one even if a
// message quoted it.
func secretsOf(raw []byte) []string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	repl := caddy.NewReplacer()
	var out []string
	add := func(s string) {
		if len(s) >= 3 { // shorter ones would blank out ordinary words
			out = append(out, s)
		}
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				s, isString := val.(string)
				if !isString {
					walk(val)
					continue
				}
				switch k {
				case "bind_password", "secret", "key_secret": // key_secret: the Redis store's
					add(s)
					add(strings.TrimSpace(repl.ReplaceKnown(s, "")))
				case "password": // the Redis store's; a static user's is a hash, no secret
					if x["backend"] == "redis" {
						add(s)
						add(strings.TrimSpace(repl.ReplaceKnown(s, "")))
					}
				case "dsn", "url": // url: the Redis store's, which may carry a password
					dsn := strings.TrimSpace(repl.ReplaceKnown(s, ""))
					add(dsn)
					for _, p := range dsnPasswords(dsn) {
						add(p)
					}
				}
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	walk(v)
	return out
}

// dsnPasswords finds the password in a DSN's URL form (scheme://u:p@h) or in
// the MySQL driver's form (u:p@tcp(h)/db), and in key=value form
// (password=p).
func dsnPasswords(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if colon := strings.IndexByte(dsn[:at], ':'); colon >= 0 && !strings.Contains(dsn[:colon], "/") {
			out = append(out, dsn[colon+1:at])
		}
	}
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			out = append(out, strings.Trim(v, `'"`))
		}
	}
	return out
}
