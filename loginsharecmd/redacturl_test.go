package loginsharecmd

import (
	"strings"
	"testing"
)

// The URL check prints (request line, JSON, errors) never carries a
// password: not a secret-looking query value, however its name is
// escaped, and not the password of user info, parsable or not.
func TestRedactURLHidesEverySecretPart(t *testing.T) {
	for _, raw := range []string{
		"https://kayako:Hunter2pw@helpdesk.example.com/loginshare/user",
		"https://helpdesk.example.com/loginshare/user?key=Hunter2pw",
		"https://helpdesk.example.com/loginshare/user?k%65y=Hunter2pw",
		"https://kayako:Hunter2pw@helpdesk.example.com:bad/loginshare/user",
		"https://kayako:Hunter2pw@%zz/x?key=Hunter2pw",
	} {
		got := redactURL(raw)
		if strings.Contains(got, "Hunter2") {
			t.Errorf("redactURL(%q) = %q", raw, got)
		}
		if !strings.Contains(got, "helpdesk.example.com") && !strings.Contains(raw, "%zz") {
			t.Errorf("redactURL(%q) = %q lost the host", raw, got)
		}
	}
	if got := redactURL("https://helpdesk.example.com/loginshare/user?lang=en"); got != "https://helpdesk.example.com/loginshare/user?lang=en" {
		t.Errorf("a URL without secrets changed: %q", got)
	}
}
