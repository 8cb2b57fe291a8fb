package gopyro

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// URI schemes, always written in upper case.
const (
	SchemePyro     = "PYRO"
	SchemePyroName = "PYRONAME"
	SchemePyroMeta = "PYROMETA"
)

// socketPrefix introduces a unix socket location, as in Pyro.
const socketPrefix = "./u:"

// URI identifies a remote object (PYRO), a name to resolve through a name
// server (PYRONAME) or a set of metadata tags to resolve (PYROMETA).
//
// The zero URI is invalid. Use [Parse] to read one and [URI.String] to write
// it; Parse(u.String()) returns u for every valid u.
type URI struct {
	// Scheme is SchemePyro, SchemePyroName or SchemePyroMeta.
	Scheme string
	// Object is the object id (PYRO) or the registered name (PYRONAME).
	// It is empty for PYROMETA.
	Object string
	// Tags are the metadata tags of a PYROMETA URI, in order.
	Tags []string
	// Host and Port locate the daemon (PYRO) or the name server
	// (PYRONAME, PYROMETA: both optional there, Port 0 meaning the default).
	Host string
	Port int
	// Socket is a unix socket path; when set, Host and Port are empty.
	Socket string
}

// NewPyroURI returns the PYRO URI of object id at host:port.
func NewPyroURI(id, host string, port int) URI {
	return URI{Scheme: SchemePyro, Object: id, Host: host, Port: port}
}

// Parse parses a PYRO, PYRONAME or PYROMETA URI. The scheme is
// case-insensitive. Errors carry [CodeInvalid].
func Parse(s string) (URI, error) {
	fail := func(why string) (URI, error) {
		return URI{}, &Error{Code: CodeInvalid, Op: "parse uri", Message: fmt.Sprintf("%s: %s", Clip(s), why)}
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fail("missing scheme (want PYRO:, PYRONAME: or PYROMETA:)")
	}
	u := URI{Scheme: strings.ToUpper(scheme)}
	body, loc, hasLoc := strings.Cut(rest, "@")
	switch u.Scheme {
	case SchemePyro:
		if !hasLoc {
			return fail("a PYRO uri needs a location: PYRO:objectid@host:port")
		}
		if err := checkName(body); err != nil {
			return fail("object id " + err.Error())
		}
		u.Object = body
	case SchemePyroName:
		if err := checkName(body); err != nil {
			return fail("name " + err.Error())
		}
		u.Object = body
	case SchemePyroMeta:
		for tag := range strings.SplitSeq(body, ",") {
			if err := checkName(tag); err != nil {
				return fail("tag " + err.Error())
			}
			u.Tags = append(u.Tags, tag)
		}
	default:
		return fail("unknown scheme " + strconv.Quote(scheme))
	}
	if !hasLoc {
		return u, nil
	}
	if err := u.parseLocation(loc); err != nil {
		return fail(err.Error())
	}
	return u, nil
}

func (u *URI) parseLocation(loc string) error {
	if path, ok := strings.CutPrefix(loc, socketPrefix); ok {
		if path == "" {
			return errors.New("empty unix socket path")
		}
		if strings.ContainsFunc(path, isBadRune) {
			return errors.New("unix socket path contains whitespace or control characters")
		}
		u.Socket = path
		return nil
	}
	if loc == "" {
		return errors.New("empty location after @")
	}
	host, portStr := loc, ""
	switch {
	case strings.HasPrefix(loc, "["):
		end := strings.Index(loc, "]")
		if end < 0 {
			return errors.New("unterminated [ in IPv6 host")
		}
		host = loc[1:end]
		after := loc[end+1:]
		if after != "" {
			p, ok := strings.CutPrefix(after, ":")
			if !ok {
				return errors.New("garbage after ] in location")
			}
			portStr = p
		}
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
	case strings.Count(loc, ":") > 1:
		return errors.New("an IPv6 host must be written in brackets: [::1]:9090")
	default:
		h, p, ok := strings.Cut(loc, ":")
		host, portStr = h, p
		if ok && p == "" {
			return errors.New("empty port")
		}
	}
	if host == "" {
		return errors.New("empty host")
	}
	if strings.ContainsFunc(host, isBadRune) || strings.ContainsAny(host, "@/[]") {
		return fmt.Errorf("invalid host %q", host)
	}
	u.Host = host
	if portStr != "" {
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 || portStr[0] == '+' || (portStr[0] == '0') {
			return fmt.Errorf("invalid port %q (want 1-65535)", portStr)
		}
		u.Port = port
	}
	if u.Scheme == SchemePyro && u.Port == 0 {
		return errors.New("a PYRO uri needs a port: PYRO:objectid@host:port")
	}
	return nil
}

// checkName validates an object id, name or tag: not empty, no whitespace,
// no control characters, no '@' (it separates the location) and no ','.
func checkName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("is %d bytes long (the limit is %d)", len(s), MaxNameLen)
	}
	if strings.ContainsFunc(s, isBadRune) {
		return errors.New("contains whitespace, control or format characters (such as bidi overrides)")
	}
	if strings.ContainsAny(s, "@,") {
		return errors.New("contains '@' or ','")
	}
	return nil
}

// isBadRune refuses what would let a name hide or disguise itself:
// whitespace, control characters, format characters (bidi overrides such
// as U+202E, zero-width joiners) and invalid UTF-8.
func isBadRune(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar
}

// ValidateName reports whether s can be used as an object id or registered
// name: not empty, at most [MaxNameLen] bytes, no whitespace, control or
// format characters, no '@' or ','.
func ValidateName(s string) error {
	if err := checkName(s); err != nil {
		return &Error{Code: CodeInvalid, Op: "validate name", Message: fmt.Sprintf("name %s %v", Clip(s), err)}
	}
	return nil
}

// clipLen is how much of a peer's string an error message quotes.
const clipLen = 128

// Clip quotes s for an error message, cut to its first 128 bytes with its
// length said when it is longer: messages must not echo what a peer sent
// without bound.
func Clip(s string) string {
	if len(s) <= clipLen {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:clipLen]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// Location returns the host:port (IPv6 in brackets) or "./u:path" part of u,
// or "" when u has none.
func (u URI) Location() string {
	switch {
	case u.Socket != "":
		return socketPrefix + u.Socket
	case u.Host == "":
		return ""
	case u.Port == 0:
		if strings.Contains(u.Host, ":") {
			return "[" + u.Host + "]"
		}
		return u.Host
	default:
		return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
	}
}

// Network and Address return the dial arguments for u's location: "unix"
// and the socket path, or "tcp" and host:port.
func (u URI) Network() string {
	if u.Socket != "" {
		return "unix"
	}
	return "tcp"
}

// Address is the dial address of u's location; see [URI.Network].
func (u URI) Address() string {
	if u.Socket != "" {
		return u.Socket
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// String formats u in its canonical form.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteByte(':')
	if u.Scheme == SchemePyroMeta {
		b.WriteString(strings.Join(u.Tags, ","))
	} else {
		b.WriteString(u.Object)
	}
	if loc := u.Location(); loc != "" {
		b.WriteByte('@')
		b.WriteString(loc)
	}
	return b.String()
}

// IsZero reports whether u is the zero URI.
func (u URI) IsZero() bool { return u.Scheme == "" }

// MarshalText writes u in its string form, so that URIs print as strings
// in JSON.
func (u URI) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText parses a URI written by MarshalText.
func (u *URI) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}
