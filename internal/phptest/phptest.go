// Package phptest finds the PHP interpreter that tests use to play Kayako's
// client (PHP cURL + SimpleXML/libxml2, as Kayako itself parses LoginShare
// answers).
package phptest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InstallHint is how to get PHP with the extensions the tests use.
const InstallHint = "apt-get install --no-install-recommends php-cli php-curl php-xml php-mbstring"

// Binary returns the path of php with the given extensions loaded. When it is
// missing the test fails under CI=true and is skipped otherwise, saying how
// to install it.
func Binary(t testing.TB, extensions ...string) string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		msg := why + "; install PHP with: " + InstallHint
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	php, err := exec.LookPath("php")
	if err != nil {
		missing("php is not installed")
	}
	list := `"` + strings.Join(extensions, `", "`) + `"`
	out, err := exec.Command(php, "-r", `foreach ([`+list+`] as $e) { if (!extension_loaded($e)) { echo $e, " "; } }`).CombinedOutput()
	if err != nil {
		missing("php -r failed: " + err.Error() + ": " + string(out))
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		missing("PHP extensions missing: " + s)
	}
	return php
}
