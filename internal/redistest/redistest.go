// Package redistest starts private Redis servers for tests: Debian's
// redis-server on loopback, a free port, no persistence, a password, and
// optionally TLS with a CA made here, or a Cluster of three masters. Each
// process is stopped by its PID.
//
// Without redis-server, Start skips the test (with the install line), or
// fails it when CI=true.
package redistest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const installHint = "redis-server not installed (apt-get install redis-server)"

// Options choose the kind of server.
type Options struct {
	// TLS serves only TLS (tls-port; port 0) with a certificate of the test CA.
	TLS bool
	// Cluster starts three masters and joins them (redis-cli --cluster create).
	Cluster bool
}

// Server is one running Redis (or Cluster).
type Server struct {
	// Addr is host:port of the server (the first node of a Cluster).
	Addr string
	// Addrs are every node (one entry unless Cluster).
	Addrs    []string
	Password string
	// CAFile is the PEM of the CA that signed the TLS certificate (TLS only).
	CAFile string

	dir   string
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Available reports whether redis-server (and redis-cli) can be run.
func Available() bool {
	_, e1 := exec.LookPath("redis-server")
	_, e2 := exec.LookPath("redis-cli")
	return e1 == nil && e2 == nil
}

// Start launches a server for t and stops it when t ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := Need(t, o)
	t.Cleanup(s.Stop)
	return s
}

// Need launches a server whose lifetime the caller manages (Stop), with the
// skip-or-fail rule of Start.
func Need(t testing.TB, o Options) *Server {
	t.Helper()
	if !Available() {
		if os.Getenv("CI") == "true" {
			t.Fatal(installHint)
		}
		t.Skip(installHint)
	}
	s, err := Launch(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Launch starts a server outside a test's lifetime; Stop ends it.
func Launch(o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	s := &Server{dir: dir, Password: hex.EncodeToString(pw)}
	fail := func(err error) (*Server, error) { s.Stop(); return nil, err }
	var tlsArgs []string
	if o.TLS {
		if tlsArgs, err = s.makeCerts(); err != nil {
			return fail(err)
		}
	}
	n := 1
	if o.Cluster {
		n = 3
	}
	for i := 0; i < n; i++ {
		port, err := freePort(o.Cluster)
		if err != nil {
			return fail(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--requirepass", s.Password, "--dir", dir, "--daemonize", "no", "--protected-mode", "yes"}
		if o.TLS {
			args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port))
			args = append(args, tlsArgs...)
		} else {
			args = append(args, "--port", strconv.Itoa(port))
		}
		if o.Cluster {
			args = append(args, "--cluster-enabled", "yes", "--masterauth", s.Password,
				"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"))
		}
		nd := &node{args: args, log: filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")}
		s.nodes = append(s.nodes, nd)
		s.Addrs = append(s.Addrs, addr)
		if err := nd.start(); err != nil {
			return fail(err)
		}
	}
	s.Addr = s.Addrs[0]
	for i := range s.nodes {
		if err := s.waitReady(i); err != nil {
			return fail(err)
		}
	}
	if o.Cluster {
		if err := s.createCluster(); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

func (n *node) start() error {
	lf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", n.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

func (n *node) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

// StopServer stops every node (the data is lost: no persistence) and keeps
// the directory so Restart can start them again on the same ports.
func (s *Server) StopServer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		n.stop()
	}
}

// Restart starts stopped nodes again on their ports (not for a Cluster).
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.nodes {
		if n.cmd != nil {
			continue
		}
		if err := n.start(); err != nil {
			return err
		}
		if err := s.waitReady(i); err != nil {
			return err
		}
	}
	return nil
}

// Stop ends every node and removes the directory.
func (s *Server) Stop() {
	s.StopServer()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// Log returns the servers' logs, for failure messages.
func (s *Server) Log() string {
	var b strings.Builder
	for _, n := range s.nodes {
		data, _ := os.ReadFile(n.log)
		b.Write(data)
	}
	return b.String()
}

// freePort returns a loopback port that was free a moment ago; for a
// Cluster node its bus port (port+10000) must be free too.
func freePort(cluster bool) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !cluster {
			return p, nil
		}
		if p+10000 > 65535 {
			continue
		}
		if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			b.Close()
			return p, nil
		}
	}
	return 0, errors.New("redistest: no free port")
}

func (s *Server) cli(addr string, args ...string) *exec.Cmd {
	host, port, _ := net.SplitHostPort(addr)
	a := []string{"-h", host, "-p", port, "--no-auth-warning", "-a", s.Password}
	if s.CAFile != "" {
		a = append(a, "--tls", "--cacert", s.CAFile)
	}
	return exec.Command("redis-cli", append(a, args...)...)
}

func (s *Server) waitReady(i int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.nodes[i].done:
			return fmt.Errorf("redis-server exited at start:\n%s", s.Log())
		default:
		}
		out, err := s.cli(s.Addrs[i], "ping").Output()
		if err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server at %s not ready in 10s:\n%s", s.Addrs[i], s.Log())
}

func (s *Server) createCluster() error {
	args := append([]string{"--cluster", "create"}, s.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := s.cli(s.Addr, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := 0
		for _, a := range s.Addrs {
			out, _ := s.cli(a, "cluster", "info").Output()
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "cluster_state:ok" {
					ok++
				}
			}
		}
		if ok == len(s.Addrs) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("redistest: cluster not ok in 20s")
}

// makeCerts writes a CA and a server certificate for 127.0.0.1 and returns
// redis-server's TLS arguments.
func (s *Server) makeCerts() ([]string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"redis.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(s.dir, "ca.pem")
	certFile := filepath.Join(s.dir, "server.pem")
	keyFile := filepath.Join(s.dir, "server.key")
	for f, b := range map[string][]byte{
		caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return nil, err
		}
	}
	s.CAFile = caFile
	return []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"}, nil
}

// TLSConfig returns a client configuration trusting the test CA.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	data, _ := os.ReadFile(s.CAFile)
	pool.AppendCertsFromPEM(data)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
