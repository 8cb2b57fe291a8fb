// Package cli implements the gopyro command line. [Run] is the whole
// program, callable in-process by tests.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is the gopyro version, set at build time with
// -ldflags "-X github.com/gopyro/gopyro/cmd/gopyro/internal/cli.Version=v1.2.3".
var Version = "dev"

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
}

// usageError marks bad command-line use (exit code 2).
type usageError struct{ error }

// ExitCode maps an error returned by Run to a process exit code: 2 for
// usage errors, 1 for the rest.
func ExitCode(err error) int {
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

// Run runs the gopyro command line with args (without the program name).
// It returns when the command is done or ctx is cancelled (servers stop
// cleanly then).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	root := &cobra.Command{
		Use:   "gopyro",
		Short: "Transparent remote objects for Go, in the spirit of Pyro and RPyC",
		Long: `gopyro serves Go objects over the network and calls them like local ones.

Servers bind 127.0.0.1 unless told otherwise and print the URI they serve on
the first line of stdout. URIs look like:
  PYRO:objectid@host:port      an object on a daemon
  PYRONAME:name[@host:port]    a name to look up in the name server
  PYROMETA:tag[,tag...]        any registration carrying all the tags`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var logLevel, logFormat string
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "what servers log to stderr: debug, info, warn or error")
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "the log's format: text or json")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
		}
		opts := &slog.HandlerOptions{Level: level}
		switch logFormat {
		case "text":
			e.log = slog.New(slog.NewTextHandler(stderr, opts))
		case "json":
			e.log = slog.New(slog.NewJSONHandler(stderr, opts))
		default:
			return usageError{fmt.Errorf("--log-format %q: want text or json", logFormat)}
		}
		return nil
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(versionCmd(e), echoCmd(e), callCmd(e), nsCmd(e), nscCmd(e), classicCmd(e), gpuCmd(e), demoCmd(e), benchCmd(e))
	_, err := root.ExecuteContextC(ctx)
	return err
}

func versionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the gopyro version",
		Args:  exactArgs(0),
		Long: `Print the gopyro version: the module version (set with -ldflags, or the
one the go command stamps from the VCS), the commit it was built from
("-dirty" when the tree had changes) and the Go version.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(e.stdout, "gopyro "+versionString()+"\n")
			return err
		},
	}
}

// versionString is Version, completed from the build information.
func versionString() string {
	v := Version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var extra []string
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "-dirty"
		}
		extra = append(extra, "commit "+rev)
	}
	extra = append(extra, bi.GoVersion)
	return v + " (" + strings.Join(extra, ", ") + ")"
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MaximumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// needSubcommand is the RunE of a command that only groups others: run
// bare or with an unknown word, it shows its help and is a usage error.
func needSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())}
	}
	_ = cmd.Help()
	return usageError{fmt.Errorf("%s needs a command", cmd.CommandPath())}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
