//go:build linux

package sambatest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/go-ldap/ldap/v3"
)

const (
	readyTimeout     = 60 * time.Second
	stopTimeout      = 15 * time.Second
	provisionTimeout = 3 * time.Minute
	lockWaitMax      = 10 * time.Minute

	// lockPath serialises Samba servers across processes: the ports are
	// machine-wide, so the lock is too (not under TMPDIR).
	lockPath = "/tmp/caddy-loginshare-sambatest.lock"

	// templateFormat changes when the way a template is built changes in a
	// way the fixture tables do not show.
	templateFormat = "2"
)

// ldapPorts are the TCP ports Samba's LDAP service opens (hard-coded in
// Samba: LDAP, LDAPS, global catalog, global catalog over TLS).
var ldapPorts = []int{389, 636, 3268, 3269}

var (
	sambaBin     = "/usr/sbin/samba"
	sambaToolBin = "/usr/bin/samba-tool"
	adSchemaDir  = "/usr/share/samba/setup/ad-schema"
)

func start(t testing.TB) *Server {
	t.Helper()
	if why := missing(); why != "" {
		unavailable(t, why)
	}
	began := time.Now()
	lk, err := acquireLock(t)
	if err != nil {
		t.Fatalf("sambatest: %v", err)
	}
	t.Cleanup(lk.release)
	waited := time.Since(began)

	tmpl, built, err := ensureTemplate(lk)
	if err != nil {
		t.Fatalf("sambatest: building the template: %v", err)
	}

	began = time.Now()
	dir, err := os.MkdirTemp(runRoot(), "sambatest-")
	if err != nil {
		t.Fatalf("sambatest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("sambatest: removing %s: %v", dir, err)
		}
	})
	if err := copyTree(tmpl, dir); err != nil {
		t.Fatalf("sambatest: copying the template: %v", err)
	}
	tf, err := writeTLS(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatalf("sambatest: certificates: %v", err)
	}
	conf, err := writeConf(dir, tf)
	if err != nil {
		t.Fatalf("sambatest: %v", err)
	}
	s, err := newServer(dir, filepath.Join(dir, "samba.log"), conf, tf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("sambatest: %v", err)
		}
	})
	s.record = func(pid int) { lk.record(pid, dir) }
	if err := s.launch(); err != nil {
		t.Fatalf("sambatest: %v\n(copied from the cached template %s: delete it if it is damaged)", err, tmpl)
	}
	how := "cached template"
	if built > 0 {
		how = fmt.Sprintf("template built in %v", built.Round(time.Millisecond))
	}
	t.Logf("sambatest: Samba AD DC ready in %v (%s; waited %v for the lock), pid %d, dir %s",
		time.Since(began).Round(time.Millisecond), how, waited.Round(time.Millisecond), s.PID(), dir)
	return s
}

func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("samba is already running")
	}
	if err := portsFree(); err != nil {
		return err
	}
	p, err := startSamba(s.Dir, s.conf, s.LogFile)
	if err != nil {
		return err
	}
	s.proc = p
	if s.record != nil {
		s.record(p.pid)
	}
	if err := p.waitReady(s.LDAPSURL, s.tls, ServiceDN, ServicePassword); err != nil {
		return err
	}
	// Plain LDAP must accept simple binds too (ldap server require strong auth = no).
	c, err := ldap.DialURL(s.LDAPURL)
	if err != nil {
		return fmt.Errorf("LDAPS answers but %s does not: %v", s.LDAPURL, err)
	}
	defer c.Close()
	if err := c.Bind(ServiceDN, ServicePassword); err != nil {
		return fmt.Errorf("simple bind over %s: %v", s.LDAPURL, err)
	}
	return nil
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	err := s.proc.stop()
	s.proc = nil
	return err
}

// missing says what keeps Samba from running here, or "".
func missing() string {
	for _, p := range []string{sambaBin, sambaToolBin} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("%s not found; %s", p, installHint)
		}
	}
	if _, err := os.Stat(adSchemaDir); err != nil {
		return fmt.Sprintf("%s not found (package samba-ad-provision); %s", adSchemaDir, installHint)
	}
	if os.Geteuid() != 0 {
		return "Samba as an AD DC must run as root (it binds ports 389 and 636 and provisions as root)"
	}
	return ""
}

// runRoot is where server directories live. Samba puts unix sockets in
// them, whose paths must stay under 108 bytes.
func runRoot() string {
	if d := os.TempDir(); len(d) <= 60 {
		return d
	}
	return "/tmp"
}

func cacheRoot() string {
	if d := os.Getenv("SAMBATEST_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "caddy-loginshare-sambatest")
	}
	return filepath.Join(runRoot(), "caddy-loginshare-sambatest-cache")
}

// templateKey names a template by everything that shapes its content: the
// Samba version, the provisioning arguments and the fixture.
func templateKey() (string, error) {
	out, err := exec.Command(sambaBin, "-V").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s -V: %v: %s", sambaBin, err, out)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%q\n%#v\n%#v\n%d %d %d %d %d\n", templateFormat, out, provisionArgs("DIR"),
		fixtureUsers, fixtureGroups, LockoutThreshold, DomainLockoutThreshold,
		psoObservationWindow, psoLockoutDuration, psoMaxPasswordAge)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate returns the directory of a provisioned template with the
// fixture loaded, building it first if the cache has none for this key.
// The caller holds the lock, so no other process builds at the same time.
func ensureTemplate(lk *fileLock) (dir string, built time.Duration, err error) {
	key, err := templateKey()
	if err != nil {
		return "", 0, err
	}
	root := cacheRoot()
	final := filepath.Join(root, "template-"+key)
	if _, err := os.Stat(filepath.Join(final, ".complete")); err == nil {
		return final, 0, nil
	}
	began := time.Now()
	b, err := os.MkdirTemp(runRoot(), "sambatest-build-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(b)
	if err := buildTemplate(b, lk); err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", 0, err
	}
	staging, err := os.MkdirTemp(root, "staging-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(staging)
	if err := copyTree(b, staging); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(staging, ".complete"), []byte(key+"\n"), 0o644); err != nil {
		return "", 0, err
	}
	// Older templates (another Samba version or fixture) are of no further use.
	old, _ := filepath.Glob(filepath.Join(root, "template-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	if err := os.Rename(staging, final); err != nil {
		return "", 0, err
	}
	return final, time.Since(began), nil
}

// provisionArgs are samba-tool's arguments for a DC in dir. The smb.conf it
// writes is replaced by writeConf; the options are given anyway so that
// provisioning itself never looks beyond loopback.
func provisionArgs(dir string) []string {
	return []string{
		"domain", "provision",
		"--realm=" + Realm, "--domain=" + Domain, "--server-role=dc",
		"--dns-backend=NONE", "--host-name=" + hostName,
		"--adminpass=" + AdminPassword,
		"--targetdir=" + dir,
		"--option=interfaces = lo", "--option=bind interfaces only = yes",
	}
}

func buildTemplate(dir string, lk *fileLock) error {
	ctx, cancel := context.WithTimeout(context.Background(), provisionTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, sambaToolBin, provisionArgs(dir)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-tool domain provision: %v; its output ends with:\n%s", err, tailLines(out, 20))
	}
	tf, err := writeTLS(filepath.Join(dir, "tls"))
	if err != nil {
		return err
	}
	conf, err := writeConf(dir, tf)
	if err != nil {
		return err
	}
	s, err := newServer(dir, filepath.Join(dir, "samba.log"), conf, tf)
	if err != nil {
		return err
	}
	if err := portsFree(); err != nil {
		return err
	}
	p, err := startSamba(dir, conf, s.LogFile)
	if err != nil {
		return err
	}
	lk.record(p.pid, dir)
	defer p.stop()
	if err := p.waitReady(s.LDAPSURL, s.tls, AdminDN, AdminPassword); err != nil {
		return err
	}
	dial := func(url string) (*ldap.Conn, error) {
		c, err := ldap.DialURL(url, ldap.DialWithTLSConfig(s.tls))
		if err != nil {
			return nil, err
		}
		c.SetTimeout(30 * time.Second)
		return c, nil
	}
	c, err := dial(s.LDAPSURL)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		return fmt.Errorf("bind as Administrator: %w", err)
	}
	if err := loadFixtures(c); err != nil {
		return fmt.Errorf("loading the fixture: %w; samba log ends with:\n%s", err, logTail(s.LogFile, 20))
	}
	if err := lockAccount(s.LDAPSURL, dial, LockedDN, LockedPassword); err != nil {
		return err
	}
	if err := p.stop(); err != nil {
		return err
	}
	// What must not reach the template: logs, this build's certificates and
	// configuration, and the provision-time smb.conf.
	for _, rm := range []string{"samba.log", "tls", "etc", "run"} {
		if err := os.RemoveAll(filepath.Join(dir, rm)); err != nil {
			return err
		}
	}
	return nil
}

// writeConf writes dir/etc/smb.conf for a DC whose data lives in dir.
// Only the LDAP service runs (no SMB, RPC, KDC, NetBIOS or DNS), so Samba
// opens nothing but the ldapPorts, and only on lo.
func writeConf(dir string, tf tlsFiles) (string, error) {
	for _, d := range []string{"etc", "run", "cache", "state", "bind-dns"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	conf := filepath.Join(dir, "etc", "smb.conf")
	text := fmt.Sprintf(`# written by the sambatest package (caddy-loginshare tests)
[global]
	netbios name = %s
	realm = %s
	workgroup = %s
	server role = active directory domain controller
	server services = ldap
	interfaces = lo
	bind interfaces only = yes
	ldap server require strong auth = no
	private dir = %[4]s/private
	lock directory = %[4]s
	state directory = %[4]s/state
	cache directory = %[4]s/cache
	binddns dir = %[4]s/bind-dns
	pid directory = %[4]s/run
	ncalrpc dir = %[4]s/run/ncalrpc
	winbindd socket directory = %[4]s/run/winbindd
	ntp signd socket directory = %[4]s/run/ntp_signd
	log file = %[4]s/log.%%m
	log level = 1 auth_audit:3
	tls enabled = yes
	tls keyfile = %[5]s
	tls certfile = %[6]s
	tls cafile = %[7]s
`, strings.ToUpper(hostName), Realm, Domain, dir, tf.keyFile, tf.certFile, tf.caFile)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", err
	}
	return conf, nil
}

// portsFree fails, naming the port, when something already listens on one of
// Samba's LDAP ports on loopback.
func portsFree() error {
	for _, port := range ldapPorts {
		for _, host := range []string{"127.0.0.1", "::1"} {
			addr := net.JoinHostPort(host, strconv.Itoa(port))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				if host == "::1" && errors.Is(err, syscall.EADDRNOTAVAIL) {
					continue // no IPv6 loopback here: Samba will not use it either
				}
				return fmt.Errorf("cannot start Samba: %s is not free (%v). Samba's LDAP ports are fixed "+
					"(389, 636, 3268, 3269); stop whatever listens there (see `ss -ltnp 'sport = :%d'`)", addr, err, port)
			}
			l.Close()
		}
	}
	return nil
}

// process is one running Samba, the leader of its own process group.
type process struct {
	cmd     *exec.Cmd
	pid     int
	logFile string
	done    chan struct{} // closed once cmd.Wait returned
	waitErr error         // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

func startSamba(dir, conf, logFile string) (*process, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// -F: stay in the foreground, so the PID is Samba's root process.
	// Setpgid makes that process the leader of a new process group (group ID
	// = PID) that all its children inherit; --no-process-group keeps Samba
	// from managing process groups itself.
	cmd := exec.Command(sambaBin, "-F", "--no-process-group", "--debug-stdout", "-s", conf)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: if the test binary dies without running its cleanups (a
	// timeout panic, a kill), Samba gets SIGTERM and its children follow.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", sambaBin, err)
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady waits until an LDAPS simple bind as dn succeeds, Samba exits, or
// readyTimeout passes.
func (p *process) waitReady(url string, cfg *tls.Config, dn, password string) error {
	deadline := time.Now().Add(readyTimeout)
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("samba (pid %d) exited before it answered (%v); log %s ends with:\n%s",
				p.pid, p.waitErr, p.logFile, logTail(p.logFile, 30))
		default:
		}
		c, err := ldap.DialURL(url, ldap.DialWithTLSConfig(cfg), ldap.DialWithDialer(dialer))
		if err == nil {
			c.SetTimeout(5 * time.Second)
			err = c.Bind(dn, password)
			c.Close()
			if err == nil {
				return nil
			}
			if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				return fmt.Errorf("samba answers, but the bind as %s fails: %v; log %s ends with:\n%s",
					dn, err, p.logFile, logTail(p.logFile, 30))
			}
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("no LDAPS bind as %s on %s within %v (last error: %v); log %s ends with:\n%s",
				dn, url, readyTimeout, last, p.logFile, logTail(p.logFile, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM to the process group, waits for every member to exit,
// and sends SIGKILL to the group after stopTimeout. Later calls return the
// first call's result.
func (p *process) stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.terminate() })
	return p.stopErr
}

func (p *process) terminate() error {
	select {
	case <-p.done:
	default:
		if err := syscall.Kill(-p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("SIGTERM to samba process group %d: %w", p.pid, err)
		}
	}
	if waitGroupGone(p.pid, stopTimeout) {
		<-p.done
		return nil
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
	if !waitGroupGone(p.pid, 5*time.Second) {
		return fmt.Errorf("samba process group %d survives SIGKILL", p.pid)
	}
	<-p.done
	return fmt.Errorf("samba process group %d ignored SIGTERM for %v and was killed; log %s ends with:\n%s",
		p.pid, stopTimeout, p.logFile, logTail(p.logFile, 20))
}

func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// groupAlive reports whether a process of group pgid still runs. Zombies do
// not count: their parent (Samba or init) reaps them, and they hold no ports.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// fileLock is the machine-wide lock that makes Samba servers take turns. The
// file also records the process group and directory of the Samba started
// under it, so that one left behind by a test binary that died without its
// cleanups is stopped by the next holder.
type fileLock struct{ f *os.File }

func acquireLock(t testing.TB) (*fileLock, error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	wait := lockWaitMax
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok && time.Until(d)-time.Minute < wait {
			wait = max(time.Until(d)-time.Minute, 10*time.Second)
		}
	}
	deadline := time.Now().Add(wait)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", lockPath, err)
		}
		if !logged {
			t.Logf("sambatest: waiting up to %v for another Server to stop, in this or another test binary "+
				"(one at a time: the ports are fixed; lock %s). A Server started by a parent test "+
				"is never stopped while its subtests run: share it instead.", wait.Round(time.Second), lockPath)
			logged = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another test held %s (Samba's fixed ports) for longer than %v", lockPath, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
	lk := &fileLock{f: f}
	lk.reapLeftover()
	return lk, nil
}

// reapLeftover stops a Samba recorded by an earlier holder that died without
// cleaning up: only if that PID still runs samba with a configuration inside
// the recorded directory.
func (lk *fileLock) reapLeftover() {
	b, err := io.ReadAll(io.NewSectionReader(lk.f, 0, 4096))
	if err != nil || len(b) == 0 {
		return
	}
	var pgid int
	var dir string
	if _, err := fmt.Sscanf(string(b), "%d %s", &pgid, &dir); err != nil || pgid <= 0 || dir == "" {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pgid))
	if err == nil && strings.Contains(string(cmdline), filepath.Join(dir, "etc", "smb.conf")) {
		syscall.Kill(-pgid, syscall.SIGTERM)
		if !waitGroupGone(pgid, stopTimeout) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			waitGroupGone(pgid, 5*time.Second)
		}
	}
	if strings.HasPrefix(filepath.Base(dir), "sambatest-") {
		os.RemoveAll(dir)
	}
	lk.f.Truncate(0)
}

func (lk *fileLock) record(pgid int, dir string) {
	lk.f.Truncate(0)
	lk.f.WriteAt([]byte(fmt.Sprintf("%d %s\n", pgid, dir)), 0)
}

func (lk *fileLock) release() {
	lk.f.Truncate(0)
	syscall.Flock(int(lk.f.Fd()), syscall.LOCK_UN)
	lk.f.Close()
}

// copyTree copies the directories and regular files of src into dst (which
// may exist), keeping permissions. Sockets and other special files are left
// out: Samba recreates them.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
