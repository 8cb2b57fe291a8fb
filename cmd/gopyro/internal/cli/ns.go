package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
	"github.com/spf13/cobra"
)

func nsCmd(e *env) *cobra.Command {
	var daemonOpts func() []daemon.Option
	var (
		host      string
		port      int
		store     string
		memory    bool
		mdns      bool
		autoclean time.Duration
		token     string
		grace     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ns",
		Short: "Run a name server",
		Long: `Run a name server until interrupted. It prints its URI on the first line of
stdout and, on the second, where its registrations are kept.

Registrations survive restarts: they are kept in a bbolt file (default
$XDG_STATE_HOME/gopyro/ns.db or ~/.local/state/gopyro/ns.db; --store PATH to
choose, --memory to keep nothing). A store that is corrupt, locked by another
name server or not writable is an error, never an empty start.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if memory && store != "" {
				return usageError{fmt.Errorf("--memory keeps nothing, --store says where to keep it: give one")}
			}
			if autoclean < 0 {
				return usageError{fmt.Errorf("--autoclean %v: want a positive duration, or 0 for never", autoclean)}
			}
			var st nameserver.Store
			where := "memory (nothing persists)"
			if memory {
				st = nameserver.NewMemoryStore()
			} else {
				if store == "" {
					var err error
					if store, err = nameserver.DefaultStorePath(); err != nil {
						return err
					}
				}
				bs, err := nameserver.OpenBoltStore(store)
				if err != nil {
					return err
				}
				defer bs.Close()
				st, where = bs, bs.Path()
			}
			ln, err := listen(host, port)
			if err != nil {
				return err
			}
			cfg := nameserver.Config{Store: st, AutoClean: autoclean, MDNS: mdns, Logger: e.log, DaemonOptions: daemonOpts()}
			if token != "" {
				cfg.DaemonOptions = append(cfg.DaemonOptions, daemon.WithToken(token))
			}
			s, err := nameserver.New(nameserver.WithConfig(cfg))
			if err != nil {
				ln.Close()
				return err
			}
			wait, err := startServing(cmd.Context(), s, ln, grace)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, s.URI())
			fmt.Fprintln(e.stdout, "store:", where)
			return wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", gopyro.DefaultHost, "address to bind, or ./u:PATH for a unix socket")
	f.IntVarP(&port, "port", "p", gopyro.NameServerPort, "port to bind (0: any free port)")
	f.StringVar(&store, "store", "", "bbolt file keeping the registrations (default: in the user's state directory)")
	f.BoolVar(&memory, "memory", false, "keep registrations in memory only")
	f.BoolVar(&mdns, "mdns", false, "advertise the name server over mDNS (multicast on the local network)")
	f.DurationVar(&autoclean, "autoclean", 0, "remove registrations whose daemon has been unreachable this long (0: never)")
	tokenFlag(f, &token, "shared secret callers must present")
	graceFlag(f, &grace)
	daemonOpts = daemonFlags(f)
	return cmd
}

func nscCmd(e *env) *cobra.Command {
	var (
		nsAddr  string
		asJSON  bool
		timeout time.Duration
		mdns    bool
	)
	root := &cobra.Command{
		Use:   "nsc",
		Short: "Query and change a name server",
		Long: `Query and change a name server. The name server is --ns HOST:PORT, else
$GOPYRO_NS_HOST/$GOPYRO_NS_PORT, else 127.0.0.1:9090 (then mDNS with --mdns).
Output is for people; --json prints JSON for scripts.`,
		Args: cobra.ArbitraryArgs,
		RunE: needSubcommand,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&nsAddr, "ns", "", "name server HOST:PORT")
	pf.BoolVar(&asJSON, "json", false, "print JSON")
	pf.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	pf.BoolVar(&mdns, "mdns", false, "look for the name server over mDNS if it is not found otherwise")
	var token string
	tokenFlag(pf, &token, "shared secret the name server requires, if any")

	// with runs fn with a located client.
	with := func(cmd *cobra.Command, fn func(ctx context.Context, c *nameserver.Client) (any, string, error)) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		opts := []nameserver.LocateOption{nameserver.WithProxyOptions(proxy.WithToken(token))}
		if nsAddr != "" {
			opts = append(opts, nameserver.At(nsAddr))
		}
		if mdns {
			opts = append(opts, nameserver.WithMDNS(0))
		}
		c, err := nameserver.Locate(ctx, opts...)
		if err != nil {
			return err
		}
		defer c.Close()
		v, text, err := fn(ctx, c)
		if err != nil {
			return err
		}
		if asJSON {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			return err
		}
		_, err = fmt.Fprint(e.stdout, text)
		return err
	}
	table := func(es []nameserver.Entry) string {
		var b strings.Builder
		w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, en := range es {
			meta := ""
			if len(en.Metadata) > 0 {
				meta = "[" + strings.Join(en.Metadata, ",") + "]"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", en.Name, en.URI, meta)
		}
		w.Flush()
		if len(es) == 0 {
			return "(no registrations)\n"
		}
		return b.String()
	}

	var regex string
	list := &cobra.Command{
		Use: "list [PREFIX]", Short: "List registrations (optionally by name prefix or --regex)", Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				if regex != "" && prefix != "" {
					return nil, "", usageError{fmt.Errorf("give a PREFIX or --regex, not both")}
				}
				var es []nameserver.Entry
				var err error
				if regex != "" {
					es, err = c.ListRegex(ctx, regex)
				} else {
					es, err = c.List(ctx, prefix)
				}
				return es, table(es), err
			})
		},
	}
	list.Flags().StringVar(&regex, "regex", "", "only names the regular expression matches whole (Go RE2 syntax; 'shop' matches shop only, 'shop.*' its prefix; Python clients get Pyro's re.match)")

	lookup := &cobra.Command{
		Use: "lookup NAME", Short: "Print the URI registered under NAME", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				en, err := c.LookupEntry(ctx, args[0])
				return en, en.URI + "\n", err
			})
		},
	}

	var meta []string
	var safe bool
	register := &cobra.Command{
		Use: "register NAME URI", Short: "Register URI under NAME", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				opts := []nameserver.RegisterOption{nameserver.Metadata(meta...)}
				if safe {
					opts = append(opts, nameserver.Safe())
				}
				u, err := gopyro.Parse(args[1])
				if err != nil {
					return nil, "", usageError{err}
				}
				err = c.Register(ctx, args[0], u, opts...)
				return map[string]string{"registered": args[0]}, "registered " + args[0] + "\n", err
			})
		},
	}
	register.Flags().StringSliceVar(&meta, "meta", nil, "metadata tags, comma separated")
	register.Flags().BoolVar(&safe, "safe", false, "fail if NAME is already registered")

	var byPrefix, byRegex bool
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove NAME (or, with --prefix/--regex, every matching name)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if byPrefix && byRegex {
				return usageError{fmt.Errorf("give --prefix or --regex, not both")}
			}
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				var n int
				var err error
				switch {
				case byPrefix:
					n, err = c.RemovePrefix(ctx, args[0])
				case byRegex:
					n, err = c.RemoveRegex(ctx, args[0])
				default:
					var ok bool
					if ok, err = c.Remove(ctx, args[0]); ok {
						n = 1
					} else if err == nil {
						err = &gopyro.Error{Code: gopyro.CodeNotFound, Op: "remove", URI: args[0], Message: "no registration by that name: nothing removed"}
					}
				}
				text := fmt.Sprintf("removed %d\n", n)
				if n == 0 {
					text = "removed 0: no name matched (the name server's own registration is never removed)\n"
				}
				return map[string]int{"removed": n}, text, err
			})
		},
	}
	remove.Flags().BoolVar(&byPrefix, "prefix", false, "treat the argument as a name prefix")
	remove.Flags().BoolVar(&byRegex, "regex", false, "treat the argument as a regular expression the whole name must match (Go RE2 syntax)")

	ping := &cobra.Command{
		Use: "ping", Short: "Check that the name server answers", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				err := c.Ping(ctx)
				return map[string]string{"ns": c.URI().String()}, "name server " + c.URI().String() + " is alive\n", err
			})
		},
	}

	setmeta := &cobra.Command{
		Use: "setmeta NAME [TAG...]", Short: "Replace the metadata tags of NAME", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				err := c.SetMetadata(ctx, args[0], args[1:]...)
				return map[string]any{"name": args[0], "metadata": args[1:]}, "metadata of " + args[0] + " set\n", err
			})
		},
	}

	var all, anyOf []string
	yp := &cobra.Command{
		Use: "yplookup", Short: "Find registrations by metadata (--all tags, --any tags)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(all) == 0 && len(anyOf) == 0 {
				return usageError{fmt.Errorf("give the tags to look for with --all and/or --any (comma-separated)")}
			}
			return with(cmd, func(ctx context.Context, c *nameserver.Client) (any, string, error) {
				es, err := c.YPLookup(ctx, all, anyOf)
				return es, table(es), err
			})
		},
	}
	yp.Flags().StringSliceVar(&all, "all", nil, "tags a registration must all carry")
	yp.Flags().StringSliceVar(&anyOf, "any", nil, "tags of which a registration must carry one")

	root.AddCommand(list, lookup, register, remove, ping, setmeta, yp)
	return root
}
