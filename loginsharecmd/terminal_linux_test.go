package loginsharecmd

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// openPTY returns a new pseudo-terminal's master and slave ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	if err := ioctl(master.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatal(err)
	}
	var n uint32
	if err := ioctl(master.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}

func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	var tio syscall.Termios
	if err := ioctl(tty.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&syscall.ECHO != 0
}

// TestPasswordFromTheTerminalIsNotEchoed runs `caddy loginshare check`
// without --username on a real pseudo-terminal: it asks for the username
// (echoed as typed) and the password with echo off, restores the terminal,
// and the password appears nowhere on the screen.
func TestPasswordFromTheTerminalIsNotEchoed(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		if got == "username=jdoe&password=s3cret+%21&ipaddress=127.0.0.1" {
			io.WriteString(w, `<loginshare><result>1</result><user><usergroup>Registered</usergroup><fullname>Jane Doe</fullname><emails><email>jane@example.com</email></emails></user></loginshare>`)
			return
		}
		io.WriteString(w, `<loginshare><result>0</result><message>wrong</message></loginshare>`)
	}))
	defer srv.Close()

	master, slave := openPTY(t)
	defer master.Close()
	cmd := exec.Command(os.Args[0], "loginshare", "check", srv.URL+"/loginshare/user")
	cmd.Env = append(os.Environ(), asCaddy+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		screen bytes.Buffer
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return // EIO once every slave end is closed
			}
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				_ = cmd.Process.Kill()
				t.Fatalf("waiting for %s; the screen shows %q", what, screen.String())
			}
		}
	}
	shows := func(s string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(screen.String(), s) }
	}

	waitFor("the username prompt", shows("Username: "))
	if !echoOn(t, slave) {
		t.Error("echo is off while the username is asked for")
	}
	io.WriteString(master, "jdoe\n")
	waitFor("the password prompt", shows("Password: "))
	// Type only once the command has turned echo off, as a person would be
	// too slow to beat it: the terminal then shows nothing of the password.
	waitFor("echo off", func() bool { return !echoOn(t, slave) })
	io.WriteString(master, "s3cret !\n")
	err := cmd.Wait()
	if !echoOn(t, slave) {
		t.Error("echo was not restored")
	}
	slave.Close()
	<-done

	out := screen.String()
	if err != nil {
		t.Errorf("exit: %v\n%s", err, out)
	}
	if got != "username=jdoe&password=s3cret+%21&ipaddress=127.0.0.1" {
		t.Errorf("the endpoint got %q", got)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("the password shows on the terminal:\n%s", out)
	}
	if !strings.Contains(out, "Username: jdoe\r\n") || !strings.Contains(out, `login: Kayako would log "jdoe" in`) {
		t.Errorf("screen:\n%s", out)
	}
}
