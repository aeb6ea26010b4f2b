package loginsharecmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kayako-loginshare/caddy-loginshare/internal/phptest"
)

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t testing.TB, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

// checkRun is one `caddy loginshare check` run, through run().
type checkRun struct {
	code   int
	stdout string
	stderr string
}

// runCheck runs `loginshare check args...` with stdin as standard input
// (never a terminal here, so the password is its first line).
func runCheck(t *testing.T, stdin string, args ...string) checkRun {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"check"}, args...), strings.NewReader(stdin), &out, &errOut)
	r := checkRun{code: code, stdout: out.String(), stderr: errOut.String()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loginshare check %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	})
	return r
}

// phpServer is PHP's built-in web server running testdata/broken_endpoints.php.
type phpServer struct {
	base string
	log  string
}

func startPHPServer(t *testing.T) *phpServer {
	t.Helper()
	php := phptest.Binary(t, "json")
	port := freePort(t)
	s := &phpServer{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(t.TempDir(), "requests.jsonl")}
	cmd := exec.Command(php, "-S", fmt.Sprintf("127.0.0.1:%d", port), "testdata/broken_endpoints.php")
	// Workers so that the slow endpoint does not hold up the others.
	cmd.Env = append(os.Environ(), "LOGINSHARE_REQUEST_LOG="+s.log, "PHP_CLI_SERVER_WORKERS=3")
	var serverLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers are stopped with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("PHP server log:\n%s", serverLog.String())
		}
	})
	waitListening(t, port)
	return s
}

// request is what the router recorded of one request.
type request struct {
	Method  string            `json:"method"`
	URI     string            `json:"uri"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Rebuilt string            `json:"rebuilt"`
}

// requests returns and forgets what the server has recorded so far.
func (s *phpServer) requests(t *testing.T) []request {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.log); err != nil {
		t.Fatal(err)
	}
	var out []request
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("request log: %v: %s", err, sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// header looks a header up case-insensitively.
func (r request) header(name string) (string, bool) {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}
