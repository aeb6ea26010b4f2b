// Package static is the loginshare.backends.static module: accounts written
// in the Caddyfile, their passwords stored as hashes that `caddy hash-password`
// prints and checked by Caddy's http.authentication.hashes modules (bcrypt,
// argon2id, or any third-party comparer).
package static

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

func init() {
	caddy.RegisterModule(Backend{})
}

// Backend authenticates people against a fixed list of accounts. Usernames
// match case-insensitively; the identity carries the username as configured.
// A login for an unknown username is still compared against a dummy hash of
// the same algorithm and cost, so that its answer takes as long as a wrong
// password for a known one and does not reveal which accounts exist.
type Backend struct {
	backends.Base

	// HashRaw selects the module, in namespace http.authentication.hashes, that
	// compares passwords with the configured hashes; its name goes in the
	// "algorithm" key. Every user's hash must be of this algorithm.
	// Default: {"algorithm": "bcrypt"}.
	HashRaw json.RawMessage `json:"hash,omitempty" caddy:"namespace=http.authentication.hashes inline_key=algorithm"`

	// Users are the accounts, at least one. Usernames must be unique without
	// regard to case. Default: none (a provision error).
	Users []User `json:"users,omitempty"`

	comparer caddyauth.Comparer
	accounts map[string]*account // by foldKey(username)
	dummy    []byte              // compared for unknown usernames
	logger   *zap.Logger
}

// User is one static account and what Kayako learns about it.
type User struct {
	// Username is the login name and, exactly as written here, the canonical
	// username reported to Kayako. Placeholders such as {env.NAME} are
	// resolved at provision. Required.
	Username string `json:"username"`

	// Password is the password hash as `caddy hash-password` prints it
	// (`$2a$…` for bcrypt, `$argon2id$…` for argon2id), or the base64 encoding
	// of that hash for compatibility with older Caddy versions. Placeholders
	// such as {env.NAME} or {file./abs/path} are resolved at provision and the
	// result is kept out of the config. Required.
	Password string `json:"password"` //nolint:gosec // a hash, not a password

	// FullName is the person's display name. Default: empty (the handler
	// falls back to "first last", then the username).
	FullName string `json:"full_name,omitempty"`

	// FirstName is the given name. Default: empty.
	FirstName string `json:"first_name,omitempty"`

	// LastName is the family name. Default: empty.
	LastName string `json:"last_name,omitempty"`

	// Emails are the person's addresses, primary first; duplicates (ignoring
	// case) are dropped. Default: none.
	Emails []string `json:"emails,omitempty"`

	// Groups are group names that user_groups and staff_teams lines may match
	// (case-insensitively). Static groups have no DN, so DN keys never match
	// them. Default: none.
	Groups []string `json:"groups,omitempty"`

	// Phone is the telephone number. Default: empty.
	Phone string `json:"phone,omitempty"`

	// Mobile is the mobile number. Default: empty.
	Mobile string `json:"mobile,omitempty"`

	// Designation is the job title. Default: empty.
	Designation string `json:"designation,omitempty"`

	// Organization is the person's organisation. Default: empty.
	Organization string `json:"organization,omitempty"`
}

// account is a provisioned user: the decoded hash and the identity to answer.
type account struct {
	hash     []byte
	identity backends.Identity
}

// CaddyModule returns the Caddy module information.
func (Backend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "loginshare.backends.static",
		New: func() caddy.Module { return new(Backend) },
	}
}

// Provision loads the hash comparer, checks and decodes every account's hash,
// and makes the dummy hash for unknown usernames.
func (b *Backend) Provision(ctx caddy.Context) error {
	b.logger = ctx.Logger()

	if len(b.Users) == 0 {
		return errors.New("no users configured")
	}

	if b.HashRaw == nil {
		b.HashRaw = json.RawMessage(`{"algorithm":"bcrypt"}`)
	}
	mod, err := ctx.LoadModule(b, "HashRaw")
	if err != nil {
		return fmt.Errorf("loading password hash module: %w", err)
	}
	cmp, ok := mod.(caddyauth.Comparer)
	if !ok {
		return fmt.Errorf("hash module %T cannot compare passwords", mod)
	}
	b.comparer = cmp
	alg := algorithmOf(cmp)

	repl := caddy.NewReplacer()
	b.accounts = make(map[string]*account, len(b.Users))
	canonical := make(map[string]string, len(b.Users))
	var hashes [][]byte
	for i, u := range b.Users {
		name := repl.ReplaceKnown(u.Username, "")
		if name == "" {
			return fmt.Errorf("user %d: empty username", i)
		}
		if !utf8.ValidString(name) {
			return fmt.Errorf("user %d: username is not valid UTF-8", i)
		}
		key := foldKey(name)
		if prev, dup := canonical[key]; dup {
			return fmt.Errorf("user %d: username %q duplicates %q (usernames are case-insensitive)", i, name, prev)
		}
		canonical[key] = name

		hash, err := decodeHash(repl.ReplaceKnown(u.Password, ""))
		if err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		if err := alg.check(hash); err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		if cost, err := bcrypt.Cost(hash); err == nil && cost < minSafeBcryptCost {
			b.logger.Warn("static account's bcrypt cost is below 10: a stolen Caddyfile's hashes are cheap to crack; make it again with `caddy hash-password`",
				zap.String("username", name), zap.Int("cost", cost))
		}
		hashes = append(hashes, hash)

		b.accounts[key] = &account{hash: hash, identity: backends.Identity{
			Username:     name,
			FirstName:    u.FirstName,
			LastName:     u.LastName,
			FullName:     u.FullName,
			Emails:       dedupe(u.Emails),
			Phone:        u.Phone,
			Mobile:       u.Mobile,
			Designation:  u.Designation,
			Organization: u.Organization,
			Groups:       groups(u.Groups),
		}}
	}

	b.dummy, err = alg.dummy(cmp, hashes)
	if err != nil {
		return fmt.Errorf("making the dummy hash for unknown users: %w", err)
	}

	b.logger.Info("static accounts loaded",
		zap.Int("users", len(b.accounts)),
		zap.String("algorithm", alg.name()))
	return nil
}

// Validate checks that Provision produced a usable backend.
func (b *Backend) Validate() error {
	if len(b.accounts) == 0 {
		return errors.New("no users configured")
	}
	if b.comparer == nil || len(b.dummy) == 0 {
		return errors.New("not provisioned")
	}
	return nil
}

// Authenticate checks c's password against the account named c.Username. An
// unknown username costs one comparison against the dummy hash, like a known
// one, and answers unknown_user; a wrong password answers invalid_credentials.
func (b *Backend) Authenticate(ctx context.Context, c backends.Credentials) (backends.Identity, error) {
	if err := ctx.Err(); err != nil {
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "static: not comparing the password: %w", err)
	}

	acct, known := b.accounts[foldKey(c.Username)]
	hash := b.dummy
	if known {
		hash = acct.hash
		if err := backends.Gate(ctx, acct.identity.Username); err != nil {
			return backends.Identity{}, err
		}
	}
	same, err := b.comparer.Compare(hash, []byte(c.Password))

	switch {
	case !known:
		if ce := b.logger.Check(zap.DebugLevel, "unknown static user"); ce != nil {
			ce.Write(zap.String("username", c.Username))
		}
		return backends.Identity{}, backends.Errorf(backends.UnknownUser, "static: no user %q", c.Username)
	case err != nil:
		// A comparer error is a broken hash or module, not a wrong password.
		return backends.Identity{}, backends.Errorf(backends.Unavailable, "static: comparing the password of %q: %w", acct.identity.Username, err)
	case !same:
		return backends.Identity{}, backends.Errorf(backends.InvalidCredentials, "static: wrong password for %q", acct.identity.Username)
	}
	if ce := b.logger.Check(zap.DebugLevel, "static user authenticated"); ce != nil {
		ce.Write(zap.String("username", acct.identity.Username))
	}
	return clone(acct.identity), nil
}

// decodeHash accepts a hash in Modular Crypt Format ("$…", what
// `caddy hash-password` prints) or, as older Caddy versions required, the
// base64 encoding of one.
func decodeHash(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty password hash")
	}
	if strings.HasPrefix(s, "$") {
		return []byte(s), nil
	}
	h, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("password hash is neither in $…$ form nor base64")
	}
	if len(h) == 0 {
		return nil, errors.New("empty password hash")
	}
	return h, nil
}

// algorithm knows what a hash module's hashes look like and how expensive they
// are, so that the dummy hash costs what a real one does.
type algorithm interface {
	name() string
	check(hash []byte) error
	dummy(cmp caddyauth.Comparer, hashes [][]byte) ([]byte, error)
}

func algorithmOf(cmp caddyauth.Comparer) algorithm {
	switch cmp.(type) {
	case *caddyauth.BcryptHash, caddyauth.BcryptHash:
		return bcryptAlgorithm{}
	case *caddyauth.Argon2idHash, caddyauth.Argon2idHash:
		return argon2idAlgorithm{}
	}
	return otherAlgorithm{}
}

// minSafeBcryptCost is the lowest bcrypt cost provisioned without a WARN
// (what `caddy hash-password` and PHP's password_hash use by default is 10 or more).
const minSafeBcryptCost = 10

type bcryptAlgorithm struct{}

func (bcryptAlgorithm) name() string { return "bcrypt" }

func (bcryptAlgorithm) check(hash []byte) error {
	if _, err := bcrypt.Cost(hash); err != nil {
		return fmt.Errorf("not a bcrypt hash: %w", err)
	}
	return nil
}

// dummy hashes a random password at the highest cost among the accounts
// (Caddy's own fake hash has cost 14, which may be far dearer than theirs).
func (bcryptAlgorithm) dummy(_ caddyauth.Comparer, hashes [][]byte) ([]byte, error) {
	maxCost := bcrypt.MinCost
	for _, h := range hashes {
		c, err := bcrypt.Cost(h)
		if err != nil {
			return nil, err
		}
		maxCost = max(maxCost, c)
	}
	return bcrypt.GenerateFromPassword([]byte(rand.Text()), maxCost)
}

type argon2idAlgorithm struct{}

func (argon2idAlgorithm) name() string { return "argon2id" }

func (argon2idAlgorithm) check(hash []byte) error {
	if _, _, err := caddyauth.DecodeHash(hash); err != nil {
		return fmt.Errorf("not an argon2id hash: %w", err)
	}
	return nil
}

// dummy hashes a random password with the parameters (memory, time,
// parallelism, key length) of the dearest account: DecodeHash returns them as
// a hasher. It also keeps that account's salt, which is harmless: the dummy
// is compared only to spend the time, its result is ignored.
func (argon2idAlgorithm) dummy(_ caddyauth.Comparer, hashes [][]byte) ([]byte, error) {
	var dearest []byte
	var maxWork uint64
	for _, h := range hashes {
		if w := argon2Work(h); dearest == nil || w > maxWork {
			dearest, maxWork = h, w
		}
	}
	params, _, err := caddyauth.DecodeHash(dearest)
	if err != nil {
		return nil, err
	}
	return params.Hash([]byte(rand.Text()))
}

// argon2Work estimates the cost of an argon2id hash as memory × passes from
// its "m=…,t=…,p=…" field; 0 if that field cannot be read.
func argon2Work(hash []byte) uint64 {
	parts := strings.Split(string(hash), "$")
	if len(parts) != 6 {
		return 0
	}
	var m, t uint64
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return 0
	}
	return m * t
}

// otherAlgorithm covers third-party hash modules, whose hashes we cannot read.
type otherAlgorithm struct{}

func (otherAlgorithm) name() string { return "other" }

func (otherAlgorithm) check([]byte) error { return nil }

// dummy hashes a random password with the module's own hasher when it has
// one; otherwise it reuses the first account's hash, which costs exactly what
// a real comparison does (the result for an unknown user is ignored anyway).
func (otherAlgorithm) dummy(cmp caddyauth.Comparer, hashes [][]byte) ([]byte, error) {
	if h, ok := cmp.(caddyauth.Hasher); ok {
		return h.Hash([]byte(rand.Text()))
	}
	return hashes[0], nil
}

// foldKey maps every rune to the smallest member of its Unicode simple case
// folding orbit, so two usernames have the same key exactly when
// strings.EqualFold says they are equal.
func foldKey(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		sb.WriteRune(low)
	}
	return sb.String()
}

// dedupe drops empty values and repeats (ignoring case), keeping the order.
func dedupe(in []string) []string {
	var out []string
	seen := make(map[string]bool, len(in))
	for _, v := range in {
		v = strings.TrimSpace(v)
		k := foldKey(v)
		if v == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, v)
	}
	return out
}

func groups(names []string) []backends.Group {
	var out []backends.Group
	for _, n := range dedupe(names) {
		out = append(out, backends.Group{Name: n})
	}
	return out
}

// clone copies the slices so that callers cannot change the account.
func clone(id backends.Identity) backends.Identity {
	id.Emails = append([]string(nil), id.Emails...)
	id.Groups = append([]backends.Group(nil), id.Groups...)
	return id
}

// Interface guards
var (
	_ caddy.Module          = (*Backend)(nil)
	_ caddy.Provisioner     = (*Backend)(nil)
	_ caddy.Validator       = (*Backend)(nil)
	_ backends.Backend      = (*Backend)(nil)
	_ caddyfile.Unmarshaler = (*Backend)(nil)
)
