package sambatest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// AptPackages are the Debian 12 packages Start needs (samba-ad-provision is
// only a Recommends of samba-ad-dc, and provisioning fails without it).
const AptPackages = "samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user"

// hostName is the DC's NetBIOS/host name; fixed so the machine's own
// hostname never matters.
const hostName = "dc1"

// Server is a running private Samba AD DC. Every field is set by Start.
type Server struct {
	LDAPURL  string // "ldap://127.0.0.1:389" (simple binds allowed without TLS)
	LDAPSURL string // "ldaps://127.0.0.1:636"
	CAFile   string // PEM of the CA that signed the server certificate
	CAPEM    []byte // the same PEM

	Realm     string // "SAMDOM.EXAMPLE.COM"
	DNSDomain string // "samdom.example.com", the UPN suffix
	Domain    string // NetBIOS domain, "SAMDOM"
	BaseDN    string // "DC=samdom,DC=example,DC=com"

	BindDN       string // the service account (ServiceDN), an ordinary user
	BindPassword string

	AdminDN       string // the domain Administrator, to change the directory from a test
	AdminPassword string

	Dir     string // this server's private copy of the template, removed at Cleanup
	LogFile string // Samba's log (stdout and stderr, log level 1 + auth_audit:3)

	mu     sync.Mutex
	proc   *process // nil while stopped
	conf   string
	tls    *tls.Config
	record func(pid int) // notes the running Samba in the lock file
}

// Start provisions a private Samba AD DC, or copies a cached provisioned
// template (see the package documentation), and returns it running and
// answering LDAPS binds as the service account. It listens on loopback only,
// on the standard ports 127.0.0.1:389/636 (and ::1, and the global catalog
// 3268/3269): Samba 4.17 has no option to choose its LDAP ports. Start fails
// at once, naming the port, if one of them is taken by another program; Starts
// in this and other processes (go test runs packages in parallel) take turns
// through a lock file instead of colliding.
//
// Each Start gets its own copy of the directory data (a lockout or a change
// made by one test is not seen by the next), and a fresh CA and server
// certificate (SAN IP:127.0.0.1, IP:::1, DNS:localhost) generated in Go.
// t.Cleanup stops Samba by its PID (SIGTERM to its whole process group, then
// SIGKILL after 15 s) and removes its directory.
//
// When Samba is not installed, or the test does not run as root (ports below
// 1024), Start calls t.Fatal if the environment variable CI is "true", and
// t.Skip otherwise, naming the apt packages to install.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t)
}

// TLSConfig returns a client configuration that trusts only this server's CA,
// with ServerName "127.0.0.1" (the certificate has that IP SAN). Each call
// returns a new copy.
func (s *Server) TLSConfig() *tls.Config {
	return s.tls.Clone()
}

// Dial connects to url (s.LDAPURL or s.LDAPSURL) with TLSConfig and closes
// the connection at the end of the test. It does not bind.
func (s *Server) Dial(t testing.TB, url string) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(url, ldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		t.Fatalf("sambatest: dial %s: %v", url, err)
	}
	c.SetTimeout(30 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// Admin returns an LDAPS connection bound as the domain Administrator,
// closed at the end of the test.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c := s.Dial(t, s.LDAPSURL)
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatalf("sambatest: bind as Administrator: %v", err)
	}
	return c
}

// BadPwdCount reads the badPwdCount of the entry dn (as Administrator, over
// LDAPS). Samba increments it once per wrong-password bind that reached it,
// so a test can prove a login was tried exactly once. A successful bind
// resets it to 0.
func (s *Server) BadPwdCount(t testing.TB, dn string) int {
	t.Helper()
	c := s.Admin(t)
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 30, false, "(objectClass=*)", []string{"badPwdCount"}, nil))
	if err != nil {
		t.Fatalf("sambatest: read badPwdCount of %s: %v", dn, err)
	}
	if len(res.Entries) != 1 {
		t.Fatalf("sambatest: read badPwdCount of %s: %d entries", dn, len(res.Entries))
	}
	v := res.Entries[0].GetAttributeValue("badPwdCount")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("sambatest: badPwdCount of %s is %q", dn, v)
	}
	return n
}

// Stop stops Samba (SIGTERM to its process group, SIGKILL after 15 s) and
// waits until every process of the group is gone. The directory and its data
// stay, so Restart can start the same server again. Cleanup stops it anyway.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("sambatest: %v", err)
	}
}

// Restart stops Samba if it runs, then starts it again on the same data,
// certificates and ports, and waits until it answers LDAPS binds again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("sambatest: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("sambatest: %v", err)
	}
}

// PID is the process ID of Samba's root process, the leader of its own
// process group, or 0 while stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
}

// LogTail returns the last n lines of Samba's log.
func (s *Server) LogTail(n int) string {
	return logTail(s.LogFile, n)
}

func newServer(dir, logFile, conf string, tf tlsFiles) (*Server, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(tf.caPEM) {
		return nil, fmt.Errorf("sambatest: generated CA PEM does not parse")
	}
	return &Server{
		LDAPURL:       "ldap://127.0.0.1:389",
		LDAPSURL:      "ldaps://127.0.0.1:636",
		CAFile:        tf.caFile,
		CAPEM:         tf.caPEM,
		Realm:         Realm,
		DNSDomain:     DNSDomain,
		Domain:        Domain,
		BaseDN:        BaseDN,
		BindDN:        ServiceDN,
		BindPassword:  ServicePassword,
		AdminDN:       AdminDN,
		AdminPassword: AdminPassword,
		Dir:           dir,
		LogFile:       logFile,
		conf:          conf,
		tls:           &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
	}, nil
}

// installHint says how to install what Start needs.
const installHint = "install Samba with: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + AptPackages

// unavailable skips the test, or fails it under CI=true, where a suite whose
// server is missing must not pass by skipping.
func unavailable(t testing.TB, why string) {
	t.Helper()
	msg := "sambatest: " + why
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

// logTail returns the last n lines of the file at path, indented, or a note
// saying why it cannot.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("\t(no log: %v)", err)
	}
	return tailLines(b, n)
}

func tailLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}
