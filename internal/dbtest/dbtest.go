// Package dbtest runs private database servers for tests: a PostgreSQL and a
// MariaDB from Debian's packages, each started at most once per test binary
// on a free loopback port, in a directory of its own under the system's temp
// directory, and stopped by PID when the binary's TestMain calls StopAll.
//
// Both need Debian's packages:
//
//	apt-get install postgresql mariadb-server
//
// Without them the test is skipped with that line, or fails when CI=true (a
// suite that should run must never pass by skipping there). No system
// instance is used or needed: where a policy-rc.d forbids services (Docker
// images, the CI machines) the packages start none, and elsewhere the system
// instances listen on their own ports, not on ours.
//
// A server is shared by every test of the binary: give each test its own
// database (CreateDatabase) and account (CreateReader). Stop and Restart
// act on the shared server, so a test that calls them must not run in
// parallel with others using it, and must leave it running.
//
// Use from a TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		dbtest.StopAll()
//		os.Exit(code)
//	}
//
// If the test binary dies without StopAll (a timeout panic, a kill), the
// servers get SIGKILL from the kernel (Pdeathsig) and their directories stay
// behind under /tmp as dbtest-*.
package dbtest

import (
	"context"
	"crypto/rand"
	dbsql "database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the command that installs every server this package runs.
const InstallHint = "apt-get install postgresql mariadb-server"

// Host is the address every server listens on.
const Host = "127.0.0.1"

const (
	readyTimeout = 60 * time.Second // a busy 2-core machine under -race
	stopTimeout  = 30 * time.Second
)

// errMissing marks a server whose binaries are not installed: a skip
// outside CI, a failure in it.
var errMissing = errors.New("not installed")

// unavailable ends t: a skip (or a failure under CI=true) when the binaries
// are missing, a failure for anything else.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if errors.Is(err, errMissing) {
		msg := fmt.Sprintf("dbtest: %s: %v; install with: %s", what, err, InstallHint)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	t.Fatalf("dbtest: %s: %v", what, err)
}

// running lists every server this binary started, for StopAll.
var (
	runningMu sync.Mutex
	running   []stopper
)

type stopper interface{ shutdown() }

func register(s stopper) {
	runningMu.Lock()
	defer runningMu.Unlock()
	running = append(running, s)
}

// StopAll stops every server started by this test binary (by PID, waiting
// for it to exit) and removes its directory. Call it from TestMain after
// m.Run; a later Start in the same binary would fail.
func StopAll() {
	runningMu.Lock()
	list := running
	running = nil
	runningMu.Unlock()
	for _, s := range list {
		s.shutdown()
	}
	stopSpawner()
}

// process is one running server process.
type process struct {
	cmd     *exec.Cmd
	pid     int
	done    chan struct{}
	waitErr error // set before done is closed
}

// startProcess starts cmd with its output appended to logFile. The kernel
// kills the server if the test binary dies without stopping it.
func startProcess(cmd *exec.Cmd, logFile *os.File) (*process, error) {
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends sig to the process and waits for it to exit, then SIGKILL
// after stopTimeout.
func (p *process) stop(sig syscall.Signal) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pdeathsig fires when the OS thread that started the child exits, not the
// process, and Go ends a thread when a goroutine locked to it returns. So
// every server is started from one goroutine locked to its thread, which
// lives until StopAll: no unrelated goroutine can take the servers down.
var (
	spawnMu  sync.Mutex
	spawnReq chan spawnCall
)

type spawnCall struct {
	cmd  *exec.Cmd
	errc chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnMu.Lock()
	if spawnReq == nil {
		spawnReq = make(chan spawnCall)
		go spawner(spawnReq)
	}
	req := spawnReq
	spawnMu.Unlock()
	call := spawnCall{cmd: cmd, errc: make(chan error, 1)}
	req <- call
	return <-call.errc
}

func spawner(req chan spawnCall) {
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	for call := range req {
		call.errc <- call.cmd.Start()
	}
}

// stopSpawner ends the spawner goroutine (after every server stopped).
func stopSpawner() {
	spawnMu.Lock()
	defer spawnMu.Unlock()
	if spawnReq != nil {
		close(spawnReq)
		spawnReq = nil
	}
}

// freePort returns a TCP port on Host that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls ping until it succeeds, the process exits or
// readyTimeout passes.
func waitReady(p *process, what, logFile string, ping func(context.Context) error) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%s (pid %d) exited before it answered (%v); %s ends with:\n%s",
				what, p.pid, p.waitErr, logFile, logTail(logFile))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = ping(ctx)
		cancel()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) did not answer within %s: %v; %s ends with:\n%s",
				what, p.pid, readyTimeout, last, logFile, logTail(logFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// openLog opens (appends to) a server's log file in dir.
func openLog(dir, name string) (*os.File, string, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return f, path, err
}

// names makes database and account names unique within the binary.
var names atomic.Int64

// uniqueName returns prefix_<n>, lower case, safe as an unquoted
// identifier in both servers.
func uniqueName(prefix string) string {
	return prefix + "_" + strconv.FormatInt(names.Add(1), 10)
}

// randomPassword is a password for a test account; it contains characters
// that need escaping in URLs and in key=value DSNs, so tests notice when a
// password is mangled (or leaked: it is distinctive enough to search for).
func randomPassword(tag string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("pw-%s-%x-/@:?#%%", tag, b)
}

// closeOnCleanup closes db when t ends.
func closeOnCleanup(t testing.TB, db *dbsql.DB) *dbsql.DB {
	t.Cleanup(func() { _ = db.Close() })
	return db
}
