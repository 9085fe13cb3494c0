// Command vipd is a VRRP daemon that floats virtual IP addresses between the
// nodes of an HA pair (or group) on one Ethernet segment.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const (
	defaultConfig = "/etc/vipd/vipd.yaml"
	usageText     = `usage: vipd <command> [flags]

commands:
  run      [--config FILE] [--socket PATH]   run the daemon in the foreground
  check    [--config FILE]                   validate a configuration file
  status   [--socket PATH] [--json]          show the running daemon's instances
  events   [--socket PATH] [--json]          follow the daemon's state transitions
  maintenance INSTANCE on|off [--socket PATH] drain an instance (resign, stay backup) or return it
  doctor   [--config FILE] [--listen DUR]    read-only checks of this host for the configured instances
  convert  [--host NAME] [FILE]              keepalived.conf (FILE or stdin) to vipd YAML on stdout

status, events and maintenance find the socket with --socket, or in the
control_socket of --config FILE, or at /run/vipd/vipd.sock.
  version                                    print version information

Run 'vipd <command> -h' for a command's flags.
`
)

// exitError carries a process exit code up to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	os.Exit(runIn(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runIn(args, strings.NewReader(""), stdout, stderr)
}

func runIn(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "maintenance":
		err = cmdMaintenance(args[1:], stdout, stderr)
	case "doctor":
		err = cmdDoctor(args[1:], stdout, stderr)
	case "events":
		err = cmdEvents(args[1:], stdout, stderr)
	case "convert":
		err = cmdConvert(args[1:], stdin, stdout, stderr)
	case "version", "--version", "-version":
		err = cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
	default:
		fmt.Fprintf(stderr, "vipd: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "vipd %s: %v\n", args[0], err)
		return 1
	}
}

// parseInterspersed parses flags that may come before or after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// flagError is how a command ends when its flags do not parse: exit 0
// after -h or --help (the flag set printed the usage), 2 otherwise (it
// printed the error and the usage).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return exitError{0}
	}
	return exitError{2}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vipd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (see 'vipd %s -h')", pos[0], name)
	}
	return nil
}

func versionInfo() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("version", pos); err != nil {
		return err
	}
	ver, rev := versionInfo()
	fmt.Fprintf(stdout, "vipd %s (commit %s, %s, %s/%s)\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
