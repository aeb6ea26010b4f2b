// Package caddyopts holds the Caddyfile parsing helpers that the handler and
// every backend share, so each rule reads and fails the same way everywhere,
// with the file and line of the offending token.
package caddyopts

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Seen records which scalar options a block has set, to refuse one given twice.
type Seen map[string]bool

// Once returns a Caddyfile error when name was already given in this block.
func (s Seen) Once(d *caddyfile.Dispenser, name string) error {
	if s[name] {
		return d.Errf("%s given more than once", name)
	}
	s[name] = true
	return nil
}

// String reads exactly one argument. Its error never quotes a token:
// Caddy's ArgErr names the token it stopped at, which for a secret with an
// unquoted space (or a placeholder that expanded to one) is part of the
// secret.
func String(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return "", ArgCount(d, opt)
	}
	return v, nil
}

// ArgCount is the wrong-argument-count error for opt, with file and line
// but without the token (see String).
func ArgCount(d *caddyfile.Dispenser, opt string) error {
	return d.Errf("%s: wrong argument count, exactly one expected (quote a value that contains spaces)", opt)
}

// NonEmptyString reads exactly one argument that is not empty or blank.
func NonEmptyString(d *caddyfile.Dispenser, opt string) (string, error) {
	v, err := String(d)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(v) == "" {
		return "", d.Errf("%s must not be empty", opt)
	}
	return v, nil
}

// Duration reads exactly one Caddy duration (1m30s, 2d) that is not negative.
func Duration(d *caddyfile.Dispenser) (time.Duration, error) {
	v, err := String(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%q is not a duration", v)
	}
	if dur < 0 {
		return 0, d.Errf("%q must not be negative", v)
	}
	return dur, nil
}

// PositiveDuration reads exactly one duration greater than zero (in JSON a
// zero means "the default", so a written 0 would silently mean something else).
func PositiveDuration(d *caddyfile.Dispenser, opt string) (time.Duration, error) {
	dur, err := Duration(d)
	if err != nil {
		return 0, err
	}
	if dur == 0 {
		return 0, d.Errf("%s must be positive (0 would mean the default)", opt)
	}
	return dur, nil
}

// PositiveInt reads exactly one whole number greater than zero.
func PositiveInt(d *caddyfile.Dispenser) (int, error) {
	v, err := String(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, d.Errf("%q is not a positive whole number", v)
	}
	return n, nil
}

// Check turns the error of a rule shared with Provision into a Caddyfile
// error at the current token (nil stays nil).
func Check(d *caddyfile.Dispenser, err error) error {
	if err == nil {
		return nil
	}
	return d.Errf("%v", err)
}

// OneOf returns an error unless v is one of the allowed words; the message
// names the option and lists the words.
func OneOf(opt, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want %s", opt, v, orList(allowed))
}

func orList(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
