package loginsharecmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kayako-loginshare/caddy-loginshare/kayako"
)

// What Kayako 4.98.8's SWIFT_LoginShare::DispatchPOST sends (see the
// protocol reference, §1.1).
const (
	kayakoUserAgent   = "SWIFT_LoginShare"
	kayakoContentType = "application/x-www-form-urlencoded"
	kayakoTimeout     = 100 * time.Second
	// maxReply bounds what is read of an answer; Kayako has no bound, but no
	// LoginShare document comes near it.
	maxReply = 8 << 20
)

func newCheckCommand(sio stdio, exit func(int) error) *cobra.Command {
	c := &cobra.Command{
		Use:   "check <url>",
		Short: "Says what Kayako would do with a LoginShare URL's answer",
		Long: `
Sends exactly what Kayako 4.98.8 sends to a LoginShare URL, for a user login
(the support centre) or with --staff for a staff login, and judges the answer
exactly as Kayako does: whether it would log the person in, show the
endpoint's refusal, or show one of its "Invalid data provided" errors, and
whom it would create or update. Works against any LoginShare endpoint: this
plugin, a legacy PHP script, a URL with ?key=.

The request: POST, Content-Type application/x-www-form-urlencoded, User-Agent
SWIFT_LoginShare, the fields PHP-urlencoded in Kayako's order (username,
password, ipaddress, then interface for staff); no redirect is followed and
the certificate is not verified, as Kayako does (this command reports
whether it would verify).

The password is read from the terminal without echo, or as one line from
standard input when that is not a terminal; it is never a flag and appears in
no output. --username is asked for when missing and a terminal is there.

Exit status: 0 Kayako would log the person in; 1 Kayako would show the
endpoint's refusal (result 0); 2 Kayako would show "Invalid data provided..."
or could not reach the URL; 3 usage error.
`,
		Example: `  caddy loginshare check --username jdoe https://helpdesk.example.com/loginshare/user
  caddy loginshare check --staff --username jdoe https://helpdesk.example.com/loginshare/staff?key=…
  printf '%s\n' "$PASSWORD" | caddy loginshare check -u jdoe --json https://old.example.com/ldap.php`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := c.Flags()
	f.Bool("staff", false, "log in as staff (Kayako's staff LoginShare) instead of as a user")
	f.StringP("username", "u", "", "the username (asked for when missing and a terminal is there)")
	f.String("interface", "staff", "the staff interface Kayako sends: staff, admin, winapp, staffapi… (with --staff)")
	f.String("ipaddress", "127.0.0.1", "the end user's address Kayako sends")
	f.Duration("timeout", kayakoTimeout, "how long to wait for the whole answer (Kayako: 100s)")
	f.Bool("json", false, "print one JSON object instead of text")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return exit(check(cmd, args, sio))
	}
	return c
}

// checkOptions are the parsed flags and argument.
type checkOptions struct {
	rawURL             string
	url                *url.URL
	staff, json        bool
	username, password string
	iface, ipaddress   string
	timeout            time.Duration
}

func usage(sio stdio, cmd *cobra.Command, format string, a ...any) int {
	fmt.Fprintf(sio.err, "%s: %s\n\n%s", cmd.CommandPath(), fmt.Sprintf(format, a...), cmd.UsageString())
	return exitUsage
}

// check runs `caddy loginshare check` and returns its exit status.
func check(cmd *cobra.Command, args []string, sio stdio) int {
	f := cmd.Flags()
	var o checkOptions
	o.staff, _ = f.GetBool("staff")
	o.json, _ = f.GetBool("json")
	o.username, _ = f.GetString("username")
	o.iface, _ = f.GetString("interface")
	o.ipaddress, _ = f.GetString("ipaddress")
	o.timeout, _ = f.GetDuration("timeout")
	if len(args) != 1 {
		return usage(sio, cmd, "give exactly one URL (got %d arguments)", len(args))
	}
	o.rawURL = args[0]
	u, err := url.Parse(o.rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usage(sio, cmd, "%q is not an http:// or https:// URL", redactURL(o.rawURL))
	}
	o.url = u
	if f.Changed("interface") && !o.staff {
		return usage(sio, cmd, "--interface is sent only with staff logins: add --staff")
	}
	if o.timeout <= 0 {
		return usage(sio, cmd, "--timeout must be positive")
	}

	var ok bool
	if o.username, o.password, ok = readCredentials(cmd, sio, o.username); !ok {
		return exitUsage
	}

	rep := send(cmd.Context(), o)
	rep.scrub(o.password)
	if o.json {
		err = rep.writeJSON(sio.out)
	} else {
		err = rep.writeText(sio.out)
	}
	if err != nil {
		fmt.Fprintf(sio.err, "%s: %v\n", cmd.CommandPath(), err)
		return exitBroken
	}
	switch rep.verdict.Outcome {
	case kayako.Login:
		return exitLogin
	case kayako.Refused:
		return exitRefused
	}
	return exitBroken
}

// readCredentials reads what every subcommand reads the same way: the
// username, asked for on the terminal when not given, and the password, from
// the terminal without echo or as the first line of a standard input that is
// not a terminal (never a flag, never the environment). On a problem it has
// said so on stderr and returns false: a usage error.
func readCredentials(cmd *cobra.Command, sio stdio, username string) (string, string, bool) {
	term := terminalOf(sio.in)
	if username == "" {
		if term == nil {
			usage(sio, cmd, "--username is required when standard input is not a terminal")
			return "", "", false
		}
		fmt.Fprint(sio.err, "Username: ")
		name, err := term.readLine()
		if err != nil {
			fmt.Fprintf(sio.err, "%s: reading the username: %v\n", cmd.CommandPath(), err)
			return "", "", false
		}
		username = name
	}
	if strings.TrimSpace(username) == "" {
		usage(sio, cmd, "the username is empty: Kayako's login forms never send an empty one")
		return "", "", false
	}
	var password string
	var err error
	if term != nil {
		fmt.Fprint(sio.err, "Password: ")
		password, err = term.readPassword()
		fmt.Fprintln(sio.err)
	} else {
		password, err = readLine(sio.in)
	}
	if err != nil {
		fmt.Fprintf(sio.err, "%s: reading the password: %v\n", cmd.CommandPath(), err)
		return "", "", false
	}
	if password == "" {
		usage(sio, cmd, "the password is empty: Kayako's login forms never send an empty one (give it on the terminal, or as one line on standard input)")
		return "", "", false
	}
	return username, password, true
}

// phpURLEncode is PHP's urlencode(): letters, digits and "-_." stay, a space
// becomes "+", every other byte is %XX with upper-case hex.
func phpURLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// field is one POST field, in the order Kayako adds it.
type field struct{ name, value string }

func (o checkOptions) fields() []field {
	fs := []field{{"username", o.username}, {"password", o.password}, {"ipaddress", o.ipaddress}}
	if o.staff {
		fs = append(fs, field{"interface", o.iface})
	}
	return fs
}

// formBody joins the fields as DispatchPOST does: key=urlencode(value), "&".
func formBody(fs []field) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.name + "=" + phpURLEncode(f.value)
	}
	return strings.Join(parts, "&")
}

// certStatus is what the TLS handshake showed; Kayako accepts any
// certificate, this says whether a verifying client would.
type certStatus struct {
	used     bool
	valid    bool
	problem  string
	subject  string
	issuer   string
	notAfter time.Time
}

// send makes Kayako's request and judges the answer.
func send(ctx context.Context, o checkOptions) *report {
	if ctx == nil {
		ctx = context.Background()
	}
	rep := &report{opts: o}
	endpoint := kayako.User
	if o.staff {
		endpoint = kayako.Staff
	}
	var cert certStatus
	host := o.url.Hostname()
	transport := &http.Transport{
		Proxy:       http.ProxyFromEnvironment, // as cURL honours http_proxy and https_proxy
		DialContext: (&net.Dialer{}).DialContext,
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // CURLOPT_SSL_VERIFYPEER=0, CURLOPT_SSL_VERIFYHOST=0
			VerifyConnection: func(cs tls.ConnectionState) error {
				cert = inspectCertificate(cs, host)
				return nil
			},
		},
		DisableCompression: true, // cURL sends no Accept-Encoding unless asked
		ForceAttemptHTTP2:  true, // as cURL's default on TLS
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       o.timeout,
	}
	body := formBody(o.fields())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.rawURL, strings.NewReader(body))
	if err != nil {
		rep.transportErr = err
		rep.verdict = kayako.Judge(endpoint, 0, nil)
		return rep
	}
	req.Header.Set("User-Agent", kayakoUserAgent)
	req.Header.Set("Accept", "*/*") // cURL's default
	req.Header.Set("Content-Type", kayakoContentType)

	start := time.Now()
	resp, err := client.Do(req)
	var reply []byte
	if err == nil {
		rep.status, rep.statusText = resp.StatusCode, resp.Status
		rep.location = resp.Header.Get("Location")
		// Kayako keeps whatever arrived, even when the transfer then fails.
		reply, err = io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
		resp.Body.Close()
		if len(reply) > maxReply {
			reply = reply[:maxReply]
			rep.truncated = true
		}
	}
	rep.elapsed = time.Since(start)
	rep.transportErr = err
	rep.cert = cert
	rep.reply = reply
	rep.verdict = kayako.Judge(endpoint, rep.status, reply)
	return rep
}

// inspectCertificate verifies the peer's chain for host, as a verifying
// client would.
func inspectCertificate(cs tls.ConnectionState, host string) certStatus {
	st := certStatus{used: true}
	if len(cs.PeerCertificates) == 0 {
		st.problem = "the server sent no certificate"
		return st
	}
	leaf := cs.PeerCertificates[0]
	st.subject, st.issuer, st.notAfter = leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Intermediates: inter}); err != nil {
		st.problem = err.Error()
		return st
	}
	st.valid = true
	return st
}

// describeTransportError says in plain words why nothing (or only part of
// the answer) arrived, without the URL (whose query may hold a secret).
func describeTransportError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		recErr tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Sprintf("no complete answer within %s (Kayako waits 100 s, then reads whatever arrived)", timeout)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the host name %q does not resolve (%s)", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens on that host and port"
	case errors.As(err, &recErr):
		return "the server does not speak TLS on that port (an https:// URL pointing at a plain-http port?)"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "could not connect: " + opErr.Err.Error()
	}
	return err.Error()
}
