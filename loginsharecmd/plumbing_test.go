package loginsharecmd

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// caddyRun runs the test binary as `caddy args...` (see TestMain): Caddy's
// own main, command registration and cobra plumbing, as in a real build.
func caddyRun(t *testing.T, stdin string, args ...string) checkRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asCaddy+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return checkRun{code: code, stdout: out.String(), stderr: errOut.String()}
}

// Kayako-shaped answers for the plumbing tests, which are about exit
// statuses and output channels, not about judging (check_php_test.go).
func answers(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			io.WriteString(w, `<loginshare><result>1</result><user><usergroup>Registered</usergroup><fullname>Jane Doe</fullname><emails><email>jane@example.com</email></emails></user></loginshare>`)
		case "/refuse":
			io.WriteString(w, `<loginshare><result>0</result><message>No such user</message></loginshare>`)
		case "/broken":
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestExitStatusesSurviveCaddysPlumbing: Caddy's WrapCommandFuncForCobra
// would turn 1 into 0 and print errors as log lines; the command's own exits
// must come through caddycmd.Main unchanged, with the report on stdout.
func TestExitStatusesSurviveCaddysPlumbing(t *testing.T) {
	s := answers(t)
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		out   string // in stdout
		noErr bool   // nothing on stderr
	}{
		{"login", []string{"loginshare", "check", "-u", "jdoe", s.URL + "/login"}, 0, "verdict       login:", true},
		{"refused", []string{"loginshare", "check", "-u", "jdoe", s.URL + "/refuse"}, 1, `show "No such user"`, true},
		{"broken", []string{"loginshare", "check", "-u", "jdoe", s.URL + "/broken"}, 2, `"Invalid data provided: 1"`, true},
		{"json", []string{"loginshare", "check", "--json", "-u", "jdoe", s.URL + "/refuse"}, 1, `"verdict": "refused"`, true},
		{"flag error", []string{"loginshare", "check", "--bogus", s.URL}, 3, "", false},
		{"no URL", []string{"loginshare", "check", "-u", "jdoe"}, 3, "", false},
		{"no subcommand", []string{"loginshare"}, 3, "", false},
		{"unknown subcommand", []string{"loginshare", "bogus"}, 3, "", false},
		{"help", []string{"loginshare", "check", "--help"}, 0, "Exit status: 0 Kayako would log the person in", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := caddyRun(t, "s3cret\n", tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, r.stdout)
			}
			if tc.noErr && r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			if !tc.noErr && (r.stderr == "" || strings.Contains(r.stderr, `"level"`)) {
				t.Errorf("a usage error should be plain words on stderr, got %q", r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "s3cret") {
				t.Error("the password appears in the output")
			}
		})
	}
}

// TestCaddyHelpListsTheCommand: `caddy help loginshare` lists check, and
// `caddy help` lists loginshare.
func TestCaddyHelpListsTheCommand(t *testing.T) {
	r := caddyRun(t, "", "help", "loginshare")
	if r.code != 0 || !regexp.MustCompile(`(?m)^Available Commands:\n(?:  .*\n)*  check +Says what Kayako would do`).MatchString(r.stdout) {
		t.Errorf("caddy help loginshare: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = caddyRun(t, "", "help")
	if r.code != 0 || !regexp.MustCompile(`(?m)^  loginshare +Shows what Kayako does`).MatchString(r.stdout) {
		t.Errorf("caddy help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCheckReportsTheCertificate: Kayako accepts any certificate, and so
// does the check (the login goes through), but it says whether a verifying
// client would accept it.
func TestCheckReportsTheCertificate(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<loginshare><result>0</result><message>No such user</message></loginshare>`)
	}))
	defer s.Close()

	r := runCheck(t, "s3cret\n", "-u", "jdoe", s.URL+"/loginshare/user")
	if r.code != exitRefused || !strings.Contains(r.stdout, strings.TrimSuffix(textLine("certificate", "NOT valid (x509: certificate signed by unknown authority);"), "\n")) {
		t.Errorf("self-signed: exit %d\n%s", r.code, r.stdout)
	}

	// With the server's certificate as the trusted roots it verifies.
	roots := t.TempDir() + "/roots.pem"
	pemBlock := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(roots, pemBlock, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "loginshare", "check", "-u", "jdoe", s.URL+"/loginshare/user")
	cmd.Env = append(os.Environ(), asCaddy+"=1", "SSL_CERT_FILE="+roots, "SSL_CERT_DIR="+t.TempDir())
	cmd.Stdin = strings.NewReader("s3cret\n")
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != exitRefused || !strings.Contains(string(out), strings.TrimSuffix(textLine("certificate", "valid for 127.0.0.1, issued by"), "\n")) {
		t.Errorf("trusted: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}
