package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
	"github.com/spf13/cobra"
)

func callCmd(e *env) *cobra.Command {
	var timeout time.Duration
	var ns string
	var token string
	var stream bool
	cmd := &cobra.Command{
		Use:   "call [flags] URI METHOD [ARG...]",
		Short: "Call a method on a remote object and print the result as JSON",
		Long: `Call METHOD on the object at URI. Each ARG is a JSON literal: 42, 2.5,
'"text"', '[1,2]', '{"k":"v"}', true, null.

The result is printed as JSON on stdout (several results as a JSON array,
none as nothing). With --stream the method must return a stream (iter.Seq
or a channel): its items are printed as they arrive, one JSON value a line.
A remote or transport error is printed on stderr and the exit status is 1.

Flags go before URI: everything after it is the method and its arguments,
so negative numbers need no "--" (gopyro call URI slow -1).

Examples:
  gopyro call PYRO:test.echoserver@127.0.0.1:40123 echo '"hi"'
  gopyro call --ns 127.0.0.1:9090 PYRONAME:example.greeting welcomeMessage '"Ada"'`,
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := gopyro.Parse(args[0])
			if err != nil {
				return usageError{err}
			}
			if ns != "" && u.Scheme != gopyro.SchemePyro && u.Host == "" {
				nu, err := nameserver.ParseAddress(ns)
				if err != nil {
					return usageError{fmt.Errorf("--ns: %w", err)}
				}
				u.Host, u.Port = nu.Host, nu.Port
			}
			callArgs := make([]any, 0, len(args)-2)
			for i, a := range args[2:] {
				v, err := parseJSONArg(a)
				if err != nil {
					return usageError{fmt.Errorf("argument %d %q is not a JSON literal: %v", i+1, a, err)}
				}
				callArgs = append(callArgs, v)
			}
			p, err := proxy.NewURI(u, proxy.WithToken(token))
			if err != nil {
				return err
			}
			defer p.Close()
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			if stream {
				for item, err := range proxy.Stream[any](ctx, p, args[1], callArgs...) {
					if err != nil {
						return err
					}
					if err := printJSON(e.stdout, item); err != nil {
						return err
					}
				}
				return nil
			}
			res, err := p.Call(ctx, args[1], callArgs...)
			if err != nil {
				return err
			}
			vals, err := res.Values()
			if err != nil {
				if strings.Contains(err.Error(), "proxy.Stream") {
					return fmt.Errorf("%w (add --stream to print its items)", err)
				}
				return err
			}
			var out any
			switch len(vals) {
			case 0:
				return nil
			case 1:
				out = vals[0]
			default:
				out = vals
			}
			return printJSON(e.stdout, out)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultCallTimeout, "give up after this long, streams included (0: no limit)")
	cmd.Flags().SetInterspersed(false) // after URI, "-1" is an argument, not a flag
	cmd.Flags().StringVar(&ns, "ns", "", "name server HOST:PORT for PYRONAME/PYROMETA URIs (default: $GOPYRO_NS_HOST/$GOPYRO_NS_PORT, then 127.0.0.1:9090)")
	tokenFlag(cmd.Flags(), &token, "shared secret the daemon (and the name server) require, if any")
	cmd.Flags().BoolVar(&stream, "stream", false, "the method returns a stream: print its items, one a line")
	return cmd
}

// printJSON prints v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Errorf("result is not printable as JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// parseJSONArg reads a JSON literal, keeping integers as int64.
func parseJSONArg(s string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return fromJSON(v)
}

// fromJSON turns decoded JSON into call arguments: integers stay exact
// (int64, or uint64 above it); an integer beyond 64 bits is refused rather
// than rounded to a float.
func fromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return u, nil
		}
		if !strings.ContainsAny(x.String(), ".eE") {
			return nil, fmt.Errorf("the integer %s does not fit 64 bits (write it as a string, or as a float: %se0)", x, x)
		}
		f, _ := x.Float64()
		return f, nil
	case []any:
		for i := range x {
			var err error
			if x[i], err = fromJSON(x[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range x {
			var err error
			if x[k], err = fromJSON(x[k]); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// jsonable turns decoded msgpack values into values encoding/json accepts.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = jsonable(val)
		}
		return m
	case map[string]any:
		for k := range x {
			x[k] = jsonable(x[k])
		}
	case []any:
		for i := range x {
			x[i] = jsonable(x[i])
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case []byte:
		return string(x)
	}
	return v
}

// defaultCallTimeout bounds a call whose peer never answers: a one-shot
// command should not wait forever (issue 15 item 4).
const defaultCallTimeout = 30 * time.Second
