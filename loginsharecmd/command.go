// Package loginsharecmd adds `caddy loginshare` to Caddy's command line:
// subcommands that show a Kayako administrator what Kayako sees.
//
//	caddy loginshare check <url>   what Kayako would do with that URL's answer
//	caddy loginshare test --config F   one login through our own config, and its story
//
// Importing the package registers the command (the plugin's root package
// does, so `xcaddy build --with` brings it). Every subcommand exits 0 when
// Kayako would log the person in, 1 when it would show the endpoint's
// refusal, 2 when the endpoint is broken or unreachable, 3 on a usage
// error.
package loginsharecmd

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// Exit statuses shared by every subcommand.
const (
	exitLogin   = 0
	exitRefused = 1
	exitBroken  = 2
	exitUsage   = 3
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "loginshare",
		Usage: "<command> [flags]",
		Short: "Shows what Kayako does with a LoginShare endpoint's answers",
		Long: `
Commands for a Kayako administrator: they show what Kayako sees when it logs
someone in through LoginShare, without touching Kayako or locking anyone out.

  check <url>   sends exactly what Kayako 4.98.8 sends to a LoginShare URL
                (this plugin's, or any other such as a PHP script) and says
                what Kayako would do with the answer
  test --config <file>
                runs one login through this plugin's own configuration
                (no server started, throttle off) and tells its story: the
                server, the entry, the groups, the mapping line, the
                document; with --probe, checks every directory server and
                the service account (bind_password)

Exit status: 0 Kayako would log the person in; 1 Kayako would show the
endpoint's refusal; 2 the endpoint is broken or unreachable (Kayako would
show "Invalid data provided"), or for test a directory is unavailable or the
config is broken; 3 usage error.
`,
		CobraFunc: func(cmd *cobra.Command) {
			// Caddy's WrapCommandFuncForCobra would turn an exit status of 1
			// into 0 and print errors as log lines, so the subcommands exit
			// themselves, once their output is written.
			configure(cmd, stdio{os.Stdin, os.Stdout, os.Stderr}, func(code int) error {
				os.Exit(code)
				return nil
			})
		},
	})
}

// stdio is where a subcommand reads and writes.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// configure makes cmd the `loginshare` command with its subcommands; exit
// ends the program with a status (os.Exit under Caddy, a recorder in
// tests).
func configure(cmd *cobra.Command, sio stdio, exit func(code int) error) {
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.Args = cobra.ArbitraryArgs
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(sio.err, "%s: %v\n\n%s", c.CommandPath(), err, c.UsageString())
		return exit(exitUsage)
	})
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			fmt.Fprintf(sio.err, "%s: unknown command %q\n\n", c.CommandPath(), args[0])
		}
		fmt.Fprint(sio.err, c.UsageString())
		return exit(exitUsage)
	}
	cmd.AddCommand(newCheckCommand(sio, exit))
	cmd.AddCommand(newTestCommand(sio, exit))
}

// run executes `caddy loginshare` with args (the words after "loginshare")
// and returns its exit status. Tests call it directly.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	code := exitLogin
	cmd := &cobra.Command{Use: "loginshare"}
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	configure(cmd, stdio{stdin, stdout, stderr}, func(c int) error {
		code = c
		return nil
	})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "loginshare: %v\n", err)
		return exitUsage
	}
	return code
}
