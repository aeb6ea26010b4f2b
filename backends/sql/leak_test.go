package sql

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestRedactorRemovesSecretsInEveryShape(t *testing.T) {
	const pw = "Tr0ub4dor&3 /@:?"
	r := newRedactor(secretForms(pw)...)
	for _, in := range []string{
		"failed: " + pw,
		"cannot parse `postgres://u:" + url.QueryEscape(pw) + "@h/d`",
		"cannot parse `postgres://u:" + escapeUserinfo(pw) + "@h/d`",
		"dsn host=h password='" + pw + "' dbname=d",
		"dsn host=h password=" + url.PathEscape(pw) + " dbname=d",
		"dsn host=h PASSWORD = hunter2 dbname=d", // a password the parser never saw
		"mysql://root:hunter2@db:3306/x",
	} {
		out := r.text(in)
		for _, leak := range append(secretForms(pw), "hunter2") {
			if strings.Contains(out, leak) {
				t.Errorf("%q → %q still holds %q", in, out, leak)
			}
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%q → %q says nothing was removed", in, out)
		}
	}
	if got := r.text("password authentication failed for user reader"); got != "password authentication failed for user reader" {
		t.Errorf("an innocent message was changed: %q", got)
	}
	base := fmt.Errorf("wrapped: %w", errors.New("dial "+pw))
	safe := r.err(base)
	if strings.Contains(safe.Error(), pw) || errors.Unwrap(safe) != nil {
		t.Errorf("redacted error %q unwraps to %v", safe, errors.Unwrap(safe))
	}
}

// TestDSNPasswordIsNeverLoggedNorInAnError drives every path that reports a
// driver error, with DEBUG logging observed, and searches every line,
// field and error text for the password in any encoding.
func TestDSNPasswordIsNeverLoggedNorInAnError(t *testing.T) {
	for _, name := range []string{"postgres", "mariadb"} {
		t.Run(name, func(t *testing.T) {
			d := openDatabase(t, name)
			secrets := secretForms(d.password)
			var dsns []string
			wrong := d.password[:len(d.password)-1] + "X" // the same shape, refused
			wrongForms := secretForms(wrong)
			secrets = append(secrets, wrongForms...)
			switch name {
			case "postgres":
				u, _ := url.Parse(d.dsn)
				user := u.User.Username()
				dsns = []string{
					d.dsn,
					strings.Replace(d.dsn, escapeUserinfo(d.password), escapeUserinfo(wrong), 1),
					"postgres://" + user + ":" + escapeUserinfo(d.password) + "@" + unreachable(t) + u.Path + "?sslmode=disable",
					fmt.Sprintf("host=127.0.0.1 port=%s user=%s password='%s' dbname=%s sslmode=disable connect_timeout=2",
						u.Port(), user, strings.ReplaceAll(wrong, `'`, `\'`), strings.TrimPrefix(u.Path, "/")),
				}
			case "mariadb":
				cfg, err := mysql.ParseDSN(d.dsn)
				if err != nil {
					t.Fatal(err)
				}
				w := *cfg
				w.Passwd = wrong
				down := *cfg
				down.Addr = unreachable(t)
				dsns = []string{d.dsn, w.FormatDSN(), down.FormatDSN()}
			}
			var texts []string
			for _, dsn := range dsns {
				for _, q := range []string{userQuery,
					"SELECT login AS username, pass AS password, company FROM people WHERE login = {username}",
					"SELECT login AS username, pass AS password FROM nosuch WHERE login = {username}",
					`SELECT login AS username, pass AS password FROM people WHERE login = {username} AND ` + d.sleepWhere,
				} {
					s := &SQL{Driver: d.driver, DSN: dsn, UserQuery: q, GroupsQuery: groupsQuery,
						QueryTimeout: caddyDuration(300 * time.Millisecond), probeAfter: time.Millisecond}
					logs, err := tryProvision(t, s)
					if err != nil {
						texts = append(texts, err.Error())
						continue
					}
					for _, u := range []struct{ name, pw string }{
						{"alice", Password}, {"alice", "wrong"}, {"nobody", Password}, {"twin@example.org", Password},
						{"dave", Password},
					} {
						if _, err := login(s, u.name, u.pw); err != nil {
							texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
						}
					}
					time.Sleep(50 * time.Millisecond) // the probe's lines
					if err := s.Cleanup(); err != nil {
						texts = append(texts, err.Error())
					}
					for _, e := range logs.All() {
						texts = append(texts, entryText(e))
					}
				}
			}
			if len(texts) < 10 {
				t.Fatalf("only %d texts collected", len(texts))
			}
			for _, txt := range texts {
				for _, sec := range secrets {
					if strings.Contains(txt, sec) {
						t.Errorf("the DSN's password (%q) is in: %s", sec, txt)
					}
				}
			}
		})
	}
}

// TestDriverErrorsAreRedactedOnTheirWayOut feeds errors that quote the
// password (no driver here does; one may tomorrow) through every reporting
// path: the log line and the returned error must not carry it.
func TestDriverErrorsAreRedactedOnTheirWayOut(t *testing.T) {
	const pw = "n0t-in-any-log"
	s, logs := provision(t, &SQL{Driver: DriverPostgres,
		DSN: "postgres://reader:" + pw + "@" + unreachable(t) + "/shop", UserQuery: okQuery})
	leaky := []error{
		errors.New("dial postgres://reader:" + pw + "@db/shop failed"),
		fmt.Errorf("wrapped: %w", errors.New("password="+pw)),
		errors.New("auth " + url.QueryEscape(pw)),
	}
	var texts []string
	for _, e := range leaky {
		texts = append(texts, s.queryError(s.userQ, e).Error())
		texts = append(texts, s.redact.err(e).Error())
	}
	texts = append(texts, logText(logs))
	for _, txt := range texts {
		if strings.Contains(txt, pw) {
			t.Errorf("password in %q", txt)
		}
	}
	if n := len(logs.All()); n < len(leaky) {
		t.Fatalf("%d log lines", n)
	}
}

// DSNs pgx cannot parse and cannot mask either: a quoted password with an
// escaped quote, an unclosed quote, a URL whose port is wrong. The
// Provision error says what is wrong without any part of the password.
func TestUnparsablePostgresDSNNeverQuotesItsPassword(t *testing.T) {
	for _, dsn := range []string{
		`host=db port=x user=u password='it\'s S3cretPart' dbname=d`,
		`host=db user=u password='S3cretPart dbname=d`,
		`host=db port=x user=u sslpassword='a\'S3cretPart'`,
		`postgres://u:S3cretPart@db:badport/d`,
	} {
		s := &SQL{Driver: DriverPostgres, DSN: dsn, UserQuery: "SELECT login AS username, pass AS password FROM people WHERE login = {username}"}
		logs, err := tryProvision(t, s)
		if err == nil {
			t.Fatalf("%s accepted", dsn)
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("the error quotes the password: %v", err)
		}
		if !strings.Contains(err.Error(), "dsn") {
			t.Errorf("the error does not say the dsn is wrong: %v", err)
		}
		for _, e := range logs.All() {
			if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "S3cret") {
				t.Errorf("a log line quotes the password: %s", line)
			}
		}
	}
}
