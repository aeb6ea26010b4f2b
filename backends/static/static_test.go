package static

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
)

const testCost = bcrypt.MinCost

func bcryptHash(t testing.TB, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// argon2idHash hashes like Caddy's argon2id module (PHC string, raw std
// base64), with small parameters to keep the tests quick.
func argon2idHash(t testing.TB, password string, memory, time uint32) string {
	t.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte(password), salt, time, memory, 1, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memory, time, 1,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func provision(t testing.TB, b *Backend) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := b.Provision(ctx); err != nil {
		return err
	}
	return b.Validate()
}

func mustProvision(t testing.TB, b *Backend) *Backend {
	t.Helper()
	if err := provision(t, b); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return b
}

func alice(t testing.TB) User {
	return User{
		Username:     "Alice",
		Password:     bcryptHash(t, "correct horse", testCost),
		FullName:     "Alice Anders",
		FirstName:    "Alice",
		LastName:     "Anders",
		Emails:       []string{"alice@example.org", "a.anders@example.org", "ALICE@example.org"},
		Groups:       []string{"staff", "admins", "Staff"},
		Phone:        "+1 555 0100",
		Mobile:       "+1 555 0101",
		Designation:  "Engineer",
		Organization: "Example Inc.",
	}
}

func login(b *Backend, user, password string) (backends.Identity, error) {
	return b.Authenticate(context.Background(), backends.Credentials{Username: user, Password: password, IPAddress: "192.0.2.1"})
}

func TestCorrectPasswordReturnsTheConfiguredIdentity(t *testing.T) {
	b := mustProvision(t, &Backend{Users: []User{alice(t)}})

	id, err := login(b, "Alice", "correct horse")
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	want := backends.Identity{
		Username:     "Alice",
		FirstName:    "Alice",
		LastName:     "Anders",
		FullName:     "Alice Anders",
		Emails:       []string{"alice@example.org", "a.anders@example.org"},
		Phone:        "+1 555 0100",
		Mobile:       "+1 555 0101",
		Designation:  "Engineer",
		Organization: "Example Inc.",
		Groups:       []backends.Group{{Name: "staff"}, {Name: "admins"}},
	}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("identity\n got %+v\nwant %+v", id, want)
	}
	if backends.ClassOf(err) != backends.OK {
		t.Errorf("class = %s", backends.ClassOf(err))
	}
}

func TestUsernameMatchesWithoutRegardToCaseAndAnswersTheCanonicalName(t *testing.T) {
	u := alice(t)
	u.Username = "Jörg.Ærø"
	b := mustProvision(t, &Backend{Users: []User{u}})

	for _, typed := range []string{"Jörg.Ærø", "jörg.ærø", "JÖRG.ÆRØ", "jÖrG.æRø"} {
		id, err := login(b, typed, "correct horse")
		if err != nil {
			t.Errorf("%q: %v", typed, err)
			continue
		}
		if id.Username != "Jörg.Ærø" {
			t.Errorf("%q: username = %q, want the configured Jörg.Ærø", typed, id.Username)
		}
	}
}

func TestWrongPasswordIsInvalidCredentials(t *testing.T) {
	b := mustProvision(t, &Backend{Users: []User{alice(t)}})

	for _, pw := range []string{"Tr0ub4dor&3", "", "correct horse ", "CORRECT HORSE"} {
		id, err := login(b, "alice", pw)
		if !errors.Is(err, backends.ErrInvalidCredentials) {
			t.Errorf("password %q: err = %v, want invalid_credentials", pw, err)
		}
		if !reflect.DeepEqual(id, backends.Identity{}) {
			t.Errorf("password %q: identity %+v on failure", pw, id)
		}
		if pw != "" && err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("error %q contains the password", err)
		}
	}
}

func TestUnknownUserIsUnknownUser(t *testing.T) {
	b := mustProvision(t, &Backend{Users: []User{alice(t)}})

	// Alice's correct password must not help a name that does not exist.
	for _, name := range []string{"bob", "alice2", " alice", ""} {
		_, err := login(b, name, "correct horse")
		if !errors.Is(err, backends.ErrUnknownUser) {
			t.Errorf("%q: err = %v, want unknown_user", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "correct horse") {
			t.Errorf("error %q contains the password", err)
		}
	}
}

func TestUnknownUserTakesAsLongAsAWrongPassword(t *testing.T) {
	// A cost above the minimum so that the comparison dominates the timing.
	u := alice(t)
	u.Password = bcryptHash(t, "correct horse", 6)
	b := mustProvision(t, &Backend{Users: []User{u}})

	const rounds = 21
	var known, unknown []time.Duration
	for range rounds {
		// interleaved, so that load changes hit both series alike
		start := time.Now()
		if _, err := login(b, "alice", "wrong password"); !errors.Is(err, backends.ErrInvalidCredentials) {
			t.Fatal(err)
		}
		known = append(known, time.Since(start))

		start = time.Now()
		if _, err := login(b, "mallory", "wrong password"); !errors.Is(err, backends.ErrUnknownUser) {
			t.Fatal(err)
		}
		unknown = append(unknown, time.Since(start))
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mk, mu := median(known), median(unknown)
	ratio := float64(mu) / float64(mk)
	t.Logf("median wrong password %v, unknown user %v, ratio %.2f", mk, mu, ratio)
	// Each bcrypt cost step doubles the time, so a dummy two steps off is a
	// ratio of 4; a busy machine moves a millisecond-scale median by less.
	if ratio < 1.0/3 || ratio > 3 {
		t.Errorf("unknown user takes %v, wrong password %v (ratio %.2f): the dummy hash does not cost what a real one does", mu, mk, ratio)
	}
}

func TestDummyHashHasTheHighestConfiguredBcryptCost(t *testing.T) {
	a := alice(t)
	b := User{Username: "bob", Password: bcryptHash(t, "pw", testCost+2)}
	be := mustProvision(t, &Backend{Users: []User{a, b}})

	cost, err := bcrypt.Cost(be.dummy)
	if err != nil {
		t.Fatalf("dummy is not bcrypt: %v", err)
	}
	if cost != testCost+2 {
		t.Errorf("dummy cost = %d, want %d", cost, testCost+2)
	}
	for _, u := range []User{a, b} {
		if string(be.dummy) == u.Password {
			t.Errorf("dummy hash is %s's hash", u.Username)
		}
	}
}

func TestBase64EncodedHashIsAccepted(t *testing.T) {
	u := alice(t)
	u.Password = base64.StdEncoding.EncodeToString([]byte(u.Password))
	b := mustProvision(t, &Backend{Users: []User{u}})

	if _, err := login(b, "alice", "correct horse"); err != nil {
		t.Errorf("correct password: %v", err)
	}
	if _, err := login(b, "alice", "wrong"); !errors.Is(err, backends.ErrInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestArgon2idHashes(t *testing.T) {
	u := User{Username: "carol", Password: argon2idHash(t, "s3cret", 8*1024, 1)}
	v := User{Username: "dave", Password: argon2idHash(t, "other", 16*1024, 2)}
	b := mustProvision(t, &Backend{
		HashRaw: json.RawMessage(`{"algorithm":"argon2id"}`),
		Users:   []User{u, v},
	})

	if _, err := login(b, "CAROL", "s3cret"); err != nil {
		t.Errorf("correct password: %v", err)
	}
	if _, err := login(b, "carol", "S3cret"); !errors.Is(err, backends.ErrInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := login(b, "erin", "s3cret"); !errors.Is(err, backends.ErrUnknownUser) {
		t.Errorf("unknown user: %v", err)
	}

	// The dummy has the parameters of the dearest account.
	if got, want := argonParams(b.dummy), "m=16384,t=2,p=1"; got != want {
		t.Errorf("dummy parameters %s, want %s", got, want)
	}
	if _, _, err := caddyauth.DecodeHash(b.dummy); err != nil {
		t.Errorf("dummy is not an argon2id hash: %v", err)
	}
	if string(b.dummy) == v.Password {
		t.Error("dummy hash is dave's hash")
	}
}

func argonParams(h []byte) string {
	parts := strings.Split(string(h), "$")
	if len(parts) != 6 {
		return ""
	}
	return parts[3]
}

func TestArgon2idHashFromCaddy(t *testing.T) {
	// Caddy's own fake hash is what `caddy hash-password --algorithm argon2id
	// --plaintext antitiming` printed, so it checks the format end to end.
	fake := string(caddyauth.Argon2idHash{}.FakeHash())
	b := mustProvision(t, &Backend{
		HashRaw: json.RawMessage(`{"algorithm":"argon2id"}`),
		Users:   []User{{Username: "x", Password: fake}},
	})
	if _, err := login(b, "x", "antitiming"); err != nil {
		t.Errorf("correct password: %v", err)
	}
}

func TestDoneContextIsUnavailableWithoutComparing(t *testing.T) {
	b := mustProvision(t, &Backend{Users: []User{alice(t)}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	for _, name := range []string{"alice", "nobody"} {
		_, err := b.Authenticate(ctx, backends.Credentials{Username: name, Password: "correct horse"})
		if backends.ClassOf(err) != backends.Unavailable {
			t.Errorf("%s: err = %v, want unavailable", name, err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v does not wrap context.Canceled", name, err)
		}
	}
}

func TestReturnedIdentityDoesNotShareState(t *testing.T) {
	b := mustProvision(t, &Backend{Users: []User{alice(t)}})
	id, err := login(b, "alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	id.Emails[0] = "mallory@example.org"
	id.Groups[0].Name = "root"

	again, err := login(b, "alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if again.Emails[0] != "alice@example.org" || again.Groups[0].Name != "staff" {
		t.Errorf("caller changed the account: %+v", again)
	}
}

func TestConcurrentLogins(t *testing.T) {
	b := mustProvision(t, &Backend{Users: []User{alice(t), {Username: "bob", Password: bcryptHash(t, "pw", testCost)}}})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			user, pw, want := "alice", "correct horse", backends.OK
			switch i % 4 {
			case 1:
				user, pw = "bob", "pw"
			case 2:
				pw, want = "nope", backends.InvalidCredentials
			case 3:
				user, want = "zed", backends.UnknownUser
			}
			if _, err := login(b, user, pw); backends.ClassOf(err) != want {
				t.Errorf("%s: %v, want %s", user, err, want)
			}
		})
	}
	wg.Wait()
}

func TestPlaceholdersInUsernameAndHashAreResolved(t *testing.T) {
	t.Setenv("LOGINSHARE_TEST_USER", "Zoe")
	t.Setenv("LOGINSHARE_TEST_HASH", bcryptHash(t, "pw", testCost))
	b := &Backend{Users: []User{{Username: "{env.LOGINSHARE_TEST_USER}", Password: "{env.LOGINSHARE_TEST_HASH}"}}}
	mustProvision(t, b)

	id, err := login(b, "zoe", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "Zoe" {
		t.Errorf("username = %q", id.Username)
	}
	if b.Users[0].Password != "{env.LOGINSHARE_TEST_HASH}" {
		t.Errorf("the resolved hash was written back into the config: %q", b.Users[0].Password)
	}
}

func TestProvisionErrors(t *testing.T) {
	good := bcryptHash(t, "pw", testCost)
	argon := argon2idHash(t, "pw", 8*1024, 1)
	tests := []struct {
		name string
		b    Backend
		want string
	}{
		{"no users", Backend{}, "no users configured"},
		{"empty username", Backend{Users: []User{{Password: good}}}, "user 0: empty username"},
		{"empty hash", Backend{Users: []User{{Username: "a"}}}, `user "a": empty password hash`},
		{"blank hash", Backend{Users: []User{{Username: "a", Password: "  "}}}, `user "a": empty password hash`},
		{"empty placeholder", Backend{Users: []User{{Username: "a", Password: "{env.LOGINSHARE_TEST_UNSET}"}}}, `user "a": empty password hash`},
		{"neither hash nor base64", Backend{Users: []User{{Username: "a", Password: "not a hash!"}}}, "neither in $…$ form nor base64"},
		{"plaintext password", Backend{Users: []User{{Username: "a", Password: "hunter22"}}}, "not a bcrypt hash"},
		{"truncated bcrypt", Backend{Users: []User{{Username: "a", Password: good[:20]}}}, "not a bcrypt hash"},
		{"bad bcrypt cost", Backend{Users: []User{{Username: "a", Password: "$2a$99" + good[6:]}}}, "not a bcrypt hash"},
		{"argon2id hash with bcrypt", Backend{Users: []User{{Username: "a", Password: argon}}}, "not a bcrypt hash"},
		{"bcrypt hash with argon2id", Backend{
			HashRaw: json.RawMessage(`{"algorithm":"argon2id"}`),
			Users:   []User{{Username: "a", Password: good}},
		}, "not an argon2id hash"},
		{"broken argon2id", Backend{
			HashRaw: json.RawMessage(`{"algorithm":"argon2id"}`),
			Users:   []User{{Username: "a", Password: strings.Replace(argon, "m=8192", "m=lots", 1)}},
		}, "not an argon2id hash"},
		{"duplicate username", Backend{Users: []User{{Username: "Alice", Password: good}, {Username: "aLICE", Password: good}}},
			`user 1: username "aLICE" duplicates "Alice"`},
		{"unknown algorithm", Backend{HashRaw: json.RawMessage(`{"algorithm":"md5"}`), Users: []User{{Username: "a", Password: good}}},
			"loading password hash module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := provision(t, &tt.b)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := `{
		"hash": {"algorithm": "bcrypt"},
		"users": [{
			"username": "Alice",
			"password": "$2a$04$abcdefghijklmnopqrstuu5Xn2r6q3yxC8aQ8n0s2kJb0G6eHd7x6",
			"full_name": "Alice Anders",
			"first_name": "Alice",
			"last_name": "Anders",
			"emails": ["alice@example.org", "aa@example.org"],
			"groups": ["staff", "admins"],
			"phone": "1",
			"mobile": "2",
			"designation": "Engineer",
			"organization": "Example Inc."
		}, {
			"username": "bob",
			"password": "JDJhJDA0JGFiYw=="
		}]
	}`
	mod, err := caddy.GetModule("loginshare.backends.static")
	if err != nil {
		t.Fatal(err)
	}
	b := mod.New().(*Backend)
	if err := json.Unmarshal([]byte(in), b); err != nil {
		t.Fatal(err)
	}
	want := Backend{
		HashRaw: json.RawMessage(`{"algorithm": "bcrypt"}`),
		Users: []User{{
			Username: "Alice", Password: "$2a$04$abcdefghijklmnopqrstuu5Xn2r6q3yxC8aQ8n0s2kJb0G6eHd7x6",
			FullName: "Alice Anders", FirstName: "Alice", LastName: "Anders",
			Emails: []string{"alice@example.org", "aa@example.org"}, Groups: []string{"staff", "admins"},
			Phone: "1", Mobile: "2", Designation: "Engineer", Organization: "Example Inc.",
		}, {Username: "bob", Password: "JDJhJDA0JGFiYw=="}},
	}
	if !reflect.DeepEqual(*b, want) {
		t.Fatalf("decoded\n got %+v\nwant %+v", *b, want)
	}

	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var gotAny, wantAny any
	if err := json.Unmarshal(out, &gotAny); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(in), &wantAny); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotAny, wantAny) {
		t.Errorf("round trip\n got %s\nwant %s", out, in)
	}
}
