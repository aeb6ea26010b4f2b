// Package slapdtest starts a private OpenLDAP slapd for tests: loopback
// ports for ldap:// (StartTLS too) and ldaps://, its own CA and server
// certificate made in Go, an mdb database with the memberof overlay, and the
// fixture directory described by the constants of this package.
//
// StartWith takes Options; with RequireClientCert slapd demands a client
// certificate on every TLS handshake (ldaps:// and StartTLS), and Server
// carries one signed by the test CA. With StatsLog slapd logs every
// operation, and Server.BindCount counts the binds that reached it.
//
// It needs Debian's slapd (`echo "slapd slapd/no_configuration boolean true" |
// debconf-set-selections; apt-get install slapd ldap-utils`). Without it,
// Start skips the test, or fails it when CI=true. Launch starts the same
// server outside a test (the benchmark harness in bench/).
package slapdtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Server is a running private slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:<port> (plain; StartTLS available)
	LDAPSURL string // ldaps://127.0.0.1:<port>
	CAFile   string // PEM of the CA that signed the server certificate
	CAPEM    []byte
	BaseDN   string
	// The service account (cn=svc,dc=example,dc=org).
	BindDN       string
	BindPassword string
	// Root DN of the database, for test set-up only.
	AdminDN       string
	AdminPassword string
	// With Options.RequireClientCert: PEM certificate (ExtKeyUsageClientAuth,
	// signed by the test CA) and PKCS#8 key a client must present. Empty
	// otherwise.
	ClientCertFile string
	ClientKeyFile  string
	// LogFile is slapd's stdout and stderr (with Options.StatsLog, its
	// stats log).
	LogFile string

	opts    Options
	t       testing.TB // nil for Launch
	close   func()     // Launch's: stop and remove dir
	dir     string
	conf    string
	slapd   string
	port    int
	tlsPort int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result
	log    *os.File
}

// Fixture constants: the directory every Start loads.
const (
	BaseDN          = "dc=example,dc=org"
	PeopleDN        = "ou=people," + BaseDN
	GroupsDN        = "ou=groups," + BaseDN
	ServiceDN       = "cn=svc," + BaseDN
	ServicePassword = "svc-Passw0rd"
	AdminDN         = "cn=admin," + BaseDN
	AdminPassword   = "adminpw"
	// Password of every fixture user.
	Password = "s3cret"

	// jdoe: the Kayako spec's T1 person.
	JDoe            = "jdoe"
	JDoeDN          = "uid=jdoe," + PeopleDN
	JDoeCN          = "Jane Doe"
	JDoeGivenName   = "Jane"
	JDoeSN          = "Doe"
	JDoeMail        = "Jane.Doe@Example.com"
	JDoeMail2       = "jane@example.org"
	JDoeTitle       = "Engineer"
	JDoePhone       = "+1 555 0100"
	JDoeMobile      = "+1 555 0199"
	JDoeOrg         = "Example Org"
	Admin1          = "admin1"
	Admin1DN        = "uid=admin1," + PeopleDN
	Admin1Mail      = "admin1@example.com"
	NoGiven         = "nogiven" // no givenName, cn "Sam Nogiven", in helpdesk-staff
	NoGivenCN       = "Sam Nogiven"
	NoMail          = "nomail" // no mail at all, in helpdesk-users
	Twin            = "twin"   // two entries carry uid=twin
	Nested          = "nested" // in inner ⊂ outer ⊂ top, and in cycle-a ⇄ cycle-b
	NestedDN        = "uid=nested," + PeopleDN
	Deep            = "deep" // in deep-1 ⊂ deep-2 ⊂ … ⊂ deep-12
	DeepChain       = 12
	Tom             = "tom"
	TomCN           = `Tom & Jerry <Ltd> "Q" 'A'`
	Zoe             = "zoe"
	ZoeCN           = "Zoë Ångström 山田太郎 🎉"
	Emile           = "émile" // a non-ASCII uid
	EmileCN         = "Émile Zola"
	GroupUsers      = "helpdesk-users"
	GroupStaff      = "helpdesk-staff"
	GroupAdmins     = "helpdesk-admins"
	GroupUsersDN    = "cn=helpdesk-users," + GroupsDN
	GroupStaffDN    = "cn=helpdesk-staff," + GroupsDN
	GroupAdminsDN   = "cn=helpdesk-admins," + GroupsDN
	ReferralDN      = "ou=elsewhere," + BaseDN // a referral object: searches get a continuation reference
	ReferralURL     = "ldap://elsewhere.example.org/ou=elsewhere,dc=example,dc=org"
	installHint     = `slapd is not installed: echo "slapd slapd/no_configuration boolean true" | debconf-set-selections && apt-get install -y slapd ldap-utils`
	startupAttempts = 5
)

// Options change how StartWith configures slapd. The zero value is Start's.
type Options struct {
	// TLSVerifyClient demand: a TLS handshake (ldaps:// or StartTLS) without
	// a certificate signed by the test CA fails. Plain ldap:// without TLS,
	// which the fixture loading and Admin use, is unaffected.
	RequireClientCert bool
	// StatsLog runs slapd with -d stats: one log line per connection and
	// per operation (the bind DN, never the password) in Server.LogFile, so
	// a test can count the binds that reached the directory (BindCount).
	StatsLog bool
	// RSAKeys makes the test CA and the server certificate RSA-2048 keys
	// (as Active Directory Certificate Services and the usual openssl
	// recipes issue) instead of P-256: a full TLS handshake then costs the
	// server an RSA-2048 signature, several times a P-256 one. For the
	// benchmark harness's per-request-connection peer; tests need not care.
	RSAKeys bool
}

// Start runs a private slapd for t, stopped (by PID) in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := findSlapd(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(installHint)
		}
		t.Skip(installHint)
	}
	s, err := launch(t.TempDir(), o, t.Cleanup)
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	return s
}

// ErrNotInstalled is returned by Launch when Debian's slapd is missing; its
// text is the install line.
var ErrNotInstalled = errors.New(installHint)

// Launch starts the same private slapd as Start outside a test (for the
// benchmark harness): in a new temporary directory, stopped by PID and
// removed by Close. Restart and TLSConfig panic where Start's would fail
// the test.
func Launch(o Options) (*Server, error) {
	if _, err := findSlapd(); err != nil {
		return nil, ErrNotInstalled
	}
	dir, err := os.MkdirTemp("", "slapdtest-")
	if err != nil {
		return nil, err
	}
	var stops []func()
	s, err := launch(dir, o, func(f func()) { stops = append(stops, f) })
	closeAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		_ = os.RemoveAll(dir)
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	s.close = closeAll
	return s, nil
}

// Close stops a server started by Launch and removes its directory.
func (s *Server) Close() {
	if s.close != nil {
		s.close()
		s.close = nil
	}
}

// launch starts slapd in dir and loads the fixture; cleanup receives the
// function that stops it, before anything can fail.
func launch(dir string, o Options, cleanup func(func())) (*Server, error) {
	bin, err := findSlapd()
	if err != nil {
		return nil, ErrNotInstalled
	}
	s := &Server{
		dir: dir, slapd: bin, opts: o,
		BaseDN: BaseDN, BindDN: ServiceDN, BindPassword: ServicePassword,
		AdminDN: AdminDN, AdminPassword: AdminPassword,
	}
	s.LogFile = filepath.Join(s.dir, "slapd.log")
	if err := s.writeFiles(); err != nil {
		return nil, fmt.Errorf("slapdtest: %v", err)
	}
	cleanup(s.Stop)
	var lastErr error
	for i := 0; i < startupAttempts; i++ {
		if s.port, err = freePort(); err != nil {
			return nil, fmt.Errorf("slapdtest: %v", err)
		}
		if s.tlsPort, err = freePort(); err != nil {
			return nil, fmt.Errorf("slapdtest: %v", err)
		}
		if s.port == s.tlsPort {
			continue
		}
		if lastErr = s.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("slapdtest: slapd did not start: %v\n%s", lastErr, s.logTail())
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", s.port)
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", s.tlsPort)
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("slapdtest: loading the fixture: %v", err)
	}
	return s, nil
}

func findSlapd() (string, error) {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/slapd", "/usr/local/sbin/slapd", "/usr/local/libexec/slapd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("slapd not found")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// fatalf fails the test that started s, or panics for Launch's servers.
func (s *Server) fatalf(format string, args ...any) {
	if s.t != nil {
		s.t.Helper()
		s.t.Fatalf(format, args...)
	}
	panic(fmt.Sprintf(format, args...))
}

// Stop terminates slapd and waits for it to exit. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
}

// Restart stops slapd and starts it again on the same ports with the same
// data.
func (s *Server) Restart() {
	if s.t != nil {
		s.t.Helper()
	}
	s.Stop()
	var err error
	for i := 0; i < 50; i++ { // the old listener may linger a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.fatalf("slapdtest: restart failed: %v\n%s", err, s.logTail())
}

// PID of the running slapd, 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// TLSConfig returns a client TLS config trusting the test CA. With
// RequireClientCert it also presents the client certificate.
func (s *Server) TLSConfig() *tls.Config {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.CAPEM)
	c := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if s.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile)
		if err != nil {
			s.fatalf("slapdtest: client certificate: %v", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// Admin returns a connection bound as the root DN, closed in t.Cleanup.
func (s *Server) Admin(t testing.TB) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL(s.URL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		c.Close()
		t.Fatalf("slapdtest: admin bind: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// BindCount returns how many bind requests for dn slapd has received so
// far (DNs compared as DNs, case-insensitively), read from its stats log:
// every simple bind that reached the directory, whatever its result. It
// needs Options.StatsLog (the test fails otherwise). slapd logs a bind when
// it receives it, before it answers, so a bind whose answer the caller has
// seen is counted.
func (s *Server) BindCount(t testing.TB, dn string) int {
	t.Helper()
	if !s.opts.StatsLog {
		t.Fatal("slapdtest: BindCount needs Options.StatsLog")
	}
	want, err := goldap.ParseDN(dn)
	if err != nil {
		t.Fatalf("slapdtest: BindCount(%q): %v", dn, err)
	}
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
	n := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		// conn=1003 op=1 BIND dn="uid=jdoe,ou=people,dc=example,dc=org" method=128
		// (a successful bind adds a second BIND line with mech=, not method=).
		i := bytes.Index(line, []byte(` BIND dn="`))
		if i < 0 || !bytes.Contains(line, []byte(`" method=`)) {
			continue
		}
		rest := line[i+len(` BIND dn="`):]
		j := bytes.LastIndex(rest, []byte(`" method=`))
		got, err := goldap.ParseDN(string(rest[:j]))
		if err == nil && got.EqualFold(want) {
			n++
		}
	}
	return n
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	urls := fmt.Sprintf("ldap://127.0.0.1:%d/ ldaps://127.0.0.1:%d/", s.port, s.tlsPort)
	debug := "0"
	if s.opts.StatsLog {
		debug = "stats"
	}
	cmd := exec.Command(s.slapd, "-f", s.conf, "-h", urls, "-d", debug)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			logf.Close()
			return fmt.Errorf("slapd exited: %v", err)
		default:
		}
		if ready(s.port) && ready(s.tlsPort) {
			s.cmd, s.exited, s.log = cmd, exited, logf
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			logf.Close()
			return errors.New("slapd did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ready(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.LogFile)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// --- files: certificates and slapd.conf ---

func (s *Server) writeFiles() error {
	for _, d := range []string{"db", "run", "tls"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return err
		}
	}
	cs, err := makeCerts(s.opts.RequireClientCert, s.opts.RSAKeys)
	if err != nil {
		return err
	}
	s.CAPEM = cs.caPEM
	s.CAFile = filepath.Join(s.dir, "tls", "ca.crt")
	files := map[string][]byte{
		s.CAFile: cs.caPEM,
		filepath.Join(s.dir, "tls", "server.crt"): cs.serverCert,
		filepath.Join(s.dir, "tls", "server.key"): cs.serverKey,
	}
	verifyClient := ""
	if s.opts.RequireClientCert {
		s.ClientCertFile = filepath.Join(s.dir, "tls", "client.crt")
		s.ClientKeyFile = filepath.Join(s.dir, "tls", "client.key")
		files[s.ClientCertFile], files[s.ClientKeyFile] = cs.clientCert, cs.clientKey
		verifyClient = "TLSVerifyClient demand\n"
	}
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	s.conf = filepath.Join(s.dir, "slapd.conf")
	var b bytes.Buffer
	fmt.Fprintf(&b, `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile  %[1]s/run/slapd.pid
argsfile %[1]s/run/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
loglevel none
TLSCACertificateFile %[1]s/tls/ca.crt
TLSCertificateFile %[1]s/tls/server.crt
TLSCertificateKeyFile %[1]s/tls/server.key
%[5]sdatabase mdb
maxsize 104857600
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
index objectClass eq
index uid,mail,cn eq
index member,memberOf eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
access to *
  by * read
`, s.dir, BaseDN, AdminDN, SSHA(AdminPassword), verifyClient)
	return os.WriteFile(s.conf, b.Bytes(), 0o600)
}

// SSHA hashes a password the way slappasswd -h {SSHA} does, for the
// fixture's entries and those the benchmark harness adds.
func SSHA(pw string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// certs are the PEM files writeFiles writes; the client pair only when
// asked for.
type certs struct {
	caPEM, serverCert, serverKey, clientCert, clientKey []byte
}

func makeCerts(client, rsaKeys bool) (certs, error) {
	var cs certs
	newKey := func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	leafUsage := x509.KeyUsageDigitalSignature
	if rsaKeys {
		newKey = func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }
		leafUsage |= x509.KeyUsageKeyEncipherment // as AD's and openssl's server certificates have
	}
	caKey, err := newKey()
	if err != nil {
		return cs, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "slapdtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return cs, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	cs.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	cs.serverCert, cs.serverKey, err = signLeaf(caCert, caKey, newKey, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     leafUsage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil || !client {
		return cs, err
	}
	cs.clientCert, cs.clientKey, err = signLeaf(caCert, caKey, newKey, &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "slapdtest client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return cs, err
}

// signLeaf makes a fresh key with newKey and signs tmpl with the CA:
// certificate and PKCS#8 key, PEM-encoded.
func signLeaf(ca *x509.Certificate, caKey crypto.Signer, newKey func() (crypto.Signer, error), tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
