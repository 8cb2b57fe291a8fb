package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/proxy"
	"github.com/spf13/cobra"
)

func classicCmd(e *env) *cobra.Command {
	var host, token, certFile, keyFile, memory string
	var grace time.Duration
	var port, maxSessions, warm, maxConns int
	var idle, callTimeout time.Duration
	var allowRemote bool
	cmd := &cobra.Command{
		Use:   "classic",
		Short: "Serve remote execution of Go source (RPyC classic mode), or run code on such a server",
		Long: `Serve classic sessions: clients run Go source on this machine, interpreted
by yaegi, each session in its own worker process. By default a session's
output appears here, on the server's console; a client can redirect it to
its own terminal (classic.Client.RedirectStdout).

This is remote code execution by design. The server binds 127.0.0.1; it
refuses any other address unless --allow-remote is given and callers must
present a token (--token) or the server speaks TLS (--tls-cert, --tls-key).

The interpreter is not a sandbox and lacks some of Go: the standard library
as of Go 1.22, no min/max/clear builtins, no range over an int or a func.
Those are reported as errors, not crashes.

Examples:
  gopyro classic                                 # serve on 127.0.0.1:18812
  gopyro classic exec 'fmt.Println("hi here")'   # run code, print its output here
  gopyro classic eval '6*7'                      # print a value as JSON
  gopyro classic shell                           # an interactive session`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			mem, err := parseSize(memory)
			if err != nil {
				return usageError{fmt.Errorf("--worker-memory %q: %v", memory, err)}
			}
			var tlsCfg *tls.Config
			if certFile != "" || keyFile != "" {
				cert, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return usageError{fmt.Errorf("--tls-cert/--tls-key: %v", err)}
				}
				tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			}
			if err := checkClassicBind(host, allowRemote, token != "" || tlsCfg != nil); err != nil {
				return usageError{err}
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg := classic.Config{MaxSessions: maxSessions, IdleTimeout: idle, CallTimeout: callTimeout,
				WorkerMemory: mem, Warm: warm, Stdout: e.stdout, Stderr: e.stderr, Logger: e.log,
				WorkerCommand: func() *exec.Cmd { return exec.Command(exe, "classic", "worker") }}
			opts := []daemon.Option{daemon.WithMaxConns(maxConns)}
			if token != "" {
				opts = append(opts, daemon.WithToken(token))
			}
			if tlsCfg != nil {
				opts = append(opts, daemon.WithTLS(tlsCfg))
			}
			ln, err := listen(host, port)
			if err != nil {
				return err
			}
			s := classic.NewServer(cfg, opts...)
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			wait, err := startServing(ctx, s, ln, grace)
			if err != nil {
				return err
			}
			uri, err := s.URI()
			if err != nil {
				stop()
				return errors.Join(err, wait())
			}
			fmt.Fprintf(e.stdout, "%s\nclassic server on %s: up to %d sessions, each a worker process; Ctrl-C stops it\n", uri, s.Addr(), maxSessions)
			return wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "address to bind, or ./u:PATH for a unix socket (anything but loopback or a socket needs --allow-remote and --token or TLS)")
	f.IntVarP(&port, "port", "p", classic.DefaultPort, "port to bind (0: any free port)")
	tokenFlag(f, &token, "shared secret clients must present")
	f.StringVar(&certFile, "tls-cert", "", "TLS certificate file (PEM); with --tls-key the server speaks TLS")
	f.StringVar(&keyFile, "tls-key", "", "TLS private key file (PEM)")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow binding a non-loopback address (needs --token or TLS)")
	f.IntVar(&maxSessions, "max-sessions", classic.DefaultMaxSessions, "most sessions (worker processes) open at once; more are refused as busy")
	f.IntVar(&maxConns, "max-conns", daemon.DefaultMaxConns, "most client connections open at once")
	f.DurationVar(&idle, "idle-timeout", classic.DefaultIdleTimeout, "end a session no call used for this long (negative: never)")
	f.DurationVar(&callTimeout, "call-timeout", classic.DefaultCallTimeout,
		"bound on each execute/eval/call without an earlier client deadline (negative: none)")
	f.StringVar(&memory, "worker-memory", "1GiB", "memory cap of each worker process (e.g. 512MiB, 2GiB)")
	f.IntVar(&warm, "warm", classic.DefaultWarm, "workers started ahead of time so a new session does not wait for one (0: none)")
	graceFlag(f, &grace)
	cmd.AddCommand(classicWorkerCmd(), classicExecCmd(e), classicEvalCmd(e), classicShellCmd(e))
	return cmd
}

// checkClassicBind refuses a non-loopback bind without an explicit
// --allow-remote and a token or TLS.
func checkClassicBind(host string, allowRemote, secured bool) error {
	if host == "localhost" || strings.HasPrefix(host, "./u:") { // a unix socket is local
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	const why = "classic mode runs any code a client sends (remote code execution by design)"
	if !allowRemote {
		return fmt.Errorf("refusing to bind %q: %s; bind 127.0.0.1, or pass --allow-remote together with --token or --tls-cert/--tls-key", host, why)
	}
	if !secured {
		return fmt.Errorf("refusing to bind %q with --allow-remote but neither --token nor TLS: %s, so callers must authenticate", host, why)
	}
	return nil
}

// parseSize reads a byte size: a number with an optional KiB, MiB, GiB
// (or K, M, G) suffix.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mul := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mul = strings.TrimSpace(rest), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mul {
		return 0, errors.New("want a positive size such as 1073741824, 512MiB or 2GiB")
	}
	return n * mul, nil
}

func classicWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "Run as a session worker (started by gopyro classic, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run:    func(*cobra.Command, []string) { classic.ServeWorker() },
	}
}

// classicClient holds the flags of the client subcommands.
type classicClient struct {
	addr, token, caFile string
	timeout             time.Duration
}

func (cc *classicClient) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&cc.addr, "addr", "127.0.0.1:"+strconv.Itoa(classic.DefaultPort), "the classic server, HOST[:PORT]")
	tokenFlag(f, &cc.token, "shared secret the server requires")
	f.StringVar(&cc.caFile, "tls-ca", "", "speak TLS, trusting the server certificates in this PEM file")
	f.DurationVar(&cc.timeout, "timeout", 0, "bound on the whole command (0: none)")
}

func (cc *classicClient) connect(ctx context.Context, e *env) (*classic.Client, error) {
	opts := []proxy.Option{proxy.WithToken(cc.token)}
	if cc.caFile != "" {
		pem, err := os.ReadFile(cc.caFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--tls-ca: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--tls-ca %s: no PEM certificates in it", cc.caFile)}
		}
		opts = append(opts, proxy.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	c, err := classic.Connect(ctx, cc.addr, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.RedirectStdout(e.stdout); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.RedirectStderr(e.stderr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// session runs f with a new session, its output redirected here, within
// --timeout; the session is closed after.
func (cc *classicClient) session(cmd *cobra.Command, e *env, f func(context.Context, *classic.Client) error) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	if cc.timeout > 0 {
		ctx, cancel = context.WithTimeout(cmd.Context(), cc.timeout)
	}
	defer cancel()
	c, err := cc.connect(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

func classicExecCmd(e *env) *cobra.Command {
	cc := &classicClient{}
	cmd := &cobra.Command{
		Use:   "exec [flags] CODE|-",
		Short: "Run Go code on a classic server, printing its output here",
		Long: `Run CODE (or, with -, all of stdin) in a new session on a classic server.
Its stdout and stderr are printed here as it runs. A compile error, a
panic or a lost session is printed on stderr and the exit status is 1.

Examples:
  gopyro classic exec 'fmt.Println("hi here")'
  gopyro classic exec - < script.go`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code := args[0]
			if code == "-" {
				b, err := io.ReadAll(e.stdin)
				if err != nil {
					return err
				}
				code = string(b)
			}
			return cc.session(cmd, e, func(ctx context.Context, c *classic.Client) error { return c.Execute(ctx, code) })
		},
	}
	cc.flags(cmd)
	return cmd
}

func classicEvalCmd(e *env) *cobra.Command {
	cc := &classicClient{}
	cmd := &cobra.Command{
		Use:   "eval [flags] EXPR",
		Short: "Evaluate a Go expression on a classic server and print its value as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cc.session(cmd, e, func(ctx context.Context, c *classic.Client) error {
				v, err := classic.Eval[any](ctx, c, args[0])
				if err != nil {
					return err
				}
				return printJSON(e.stdout, v)
			})
		},
	}
	cc.flags(cmd)
	return cmd
}

func classicShellCmd(e *env) *cobra.Command {
	cc := &classicClient{}
	cmd := &cobra.Command{
		Use:   "shell [flags]",
		Short: "An interactive session on a classic server",
		Long: `Read Go statements, declarations and expressions, one entry at a time, and
run each in one session: declarations persist. An entry goes on over
several lines while brackets are open. An expression prints its value as
JSON (unless it is nil, or a call of print, println, fmt or log, which runs
for its output). Errors are printed and the session goes on;
end with Ctrl-D or "exit".`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cc.session(cmd, e, func(ctx context.Context, c *classic.Client) error {
				fmt.Fprintf(e.stdout, "session %s on %s (worker pid %d)\n", c.ID(), cc.addr, c.PID())
				in := bufio.NewScanner(e.stdin)
				in.Buffer(make([]byte, 64<<10), 16<<20)
				var entry strings.Builder
				for {
					if entry.Len() == 0 {
						fmt.Fprint(e.stdout, ">>> ")
					} else {
						fmt.Fprint(e.stdout, "... ")
					}
					if !in.Scan() {
						fmt.Fprintln(e.stdout)
						if rest := strings.TrimSpace(entry.String()); rest != "" {
							// An unfinished entry at the end: show its error.
							if err := shellRun(ctx, e, c, rest); err != nil {
								fmt.Fprintln(e.stdout, "error:", err)
							}
						}
						return in.Err()
					}
					entry.WriteString(in.Text())
					entry.WriteByte('\n')
					src := entry.String()
					if bracketsOpen(src) {
						continue
					}
					entry.Reset()
					src = strings.TrimSpace(src)
					switch src {
					case "":
						continue
					case "exit", "quit":
						return nil
					}
					if err := shellRun(ctx, e, c, src); err != nil {
						if errors.Is(err, classic.ErrSessionLost) || ctx.Err() != nil {
							return err
						}
						fmt.Fprintln(e.stdout, "error:", err)
					}
				}
			})
		},
	}
	cc.flags(cmd)
	return cmd
}

// shellRun runs one shell entry: an expression is evaluated and its value
// printed (unless it is nil, or a call of a printing function, which is
// run for its output); anything else is executed.
func shellRun(ctx context.Context, e *env, c *classic.Client, src string) error {
	x, err := parser.ParseExpr(src)
	if err != nil || printingCall(x) {
		return c.Execute(ctx, src)
	}
	v, err := classic.Eval[any](ctx, c, src)
	if err != nil || v == nil {
		return err
	}
	return printJSON(e.stdout, v)
}

// printingCall reports whether x calls print, println or a function of
// package fmt or log.
func printingCall(x ast.Expr) bool {
	call, ok := x.(*ast.CallExpr)
	if !ok {
		return false
	}
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name == "print" || f.Name == "println"
	case *ast.SelectorExpr:
		pkg, ok := f.X.(*ast.Ident)
		return ok && (pkg.Name == "fmt" || pkg.Name == "log")
	}
	return false
}

// bracketsOpen reports whether src has unclosed brackets (the entry goes on).
func bracketsOpen(src string) bool {
	fset := token.NewFileSet()
	f := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(f, []byte(src), nil, 0)
	depth := 0
	for {
		_, t, _ := s.Scan()
		switch t {
		case token.EOF:
			return depth > 0
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
		}
	}
}
