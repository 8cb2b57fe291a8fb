package nameserver

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/gopyro/gopyro"
)

// object is the remote name server object. Its exported methods are the
// name server's calls; Pyro clients reach them by their snake_case names
// too (lookup, yplookup, set_metadata, ...).
type object struct {
	store Store
	self  string       // the name server's own name, never removed
	log   *slog.Logger // one info line per change; nil: none
}

// logChange logs a change of the registrations at info level.
func (o *object) logChange(msg string, args ...any) {
	if o.log != nil {
		o.log.Info("nameserver: "+msg, args...)
	}
}

func notFound(name string) error {
	return &gopyro.Error{Code: gopyro.CodeNotFound, Op: "lookup", Message: fmt.Sprintf("unknown name: %s", name)}
}

func invalid(format string, args ...any) error {
	return &gopyro.Error{Code: gopyro.CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// Register maps name to uri. With safe set it refuses to replace an
// existing registration.
func (o *object) Register(name, uri string, safe bool, metadata []string) error {
	if err := gopyro.ValidateName(name); err != nil {
		return err
	}
	u, err := gopyro.Parse(uri)
	if err != nil {
		return err
	}
	if u.Scheme != gopyro.SchemePyro {
		return invalid("can only register PYRO uris, not %s", uri)
	}
	if name == o.self {
		return invalid("%s is the name server's own name", name)
	}
	if err := checkTags(metadata); err != nil {
		return err
	}
	e := Entry{Name: name, URI: u.String(), Metadata: dedupe(metadata)}
	if err := o.store.Put(e, safe); err != nil {
		return err
	}
	o.logChange("registered", "name", name, "uri", e.URI, "metadata", e.Metadata)
	return nil
}

// Bounds on what one call may make the name server do.
const (
	// MaxTags bounds the tags of a registration and of a yplookup query.
	MaxTags = 64
	// maxRegexLen and maxRegexInsts bound a list or remove pattern, as
	// written and as compiled (x{1000}{1000} is short but huge).
	maxRegexLen   = 1024
	maxRegexInsts = 10_000
	// ctxCheckEvery is how many registrations a scan handles between
	// checks that its caller is still there.
	ctxCheckEvery = 1024
)

// checkTags validates a list of tags.
func checkTags(tags []string) error {
	if len(tags) > MaxTags {
		return invalid("%d tags (the limit is %d)", len(tags), MaxTags)
	}
	for _, tag := range tags {
		if err := gopyro.ValidateName(tag); err != nil {
			return err
		}
	}
	return nil
}

func dedupe(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// Lookup returns the URI registered under name.
func (o *object) Lookup(name string) (string, error) {
	e, err := o.get(name)
	return e.URI, err
}

// LookupEntry returns the whole registration of name.
func (o *object) LookupEntry(name string) (Entry, error) { return o.get(name) }

func (o *object) get(name string) (Entry, error) {
	e, ok, err := o.store.Get(name)
	if err != nil {
		return Entry{}, err
	}
	if !ok {
		return Entry{}, notFound(name)
	}
	return e, nil
}

// List returns the registrations whose names start with prefix and match
// regex (both optional), as name -> URI.
func (o *object) List(ctx context.Context, prefix, regex string) (map[string]string, error) {
	return uriMap(o.ListEntries(ctx, prefix, regex))
}

// uriMap turns entries into name -> URI, as Pyro's list and yplookup answer.
func uriMap(es []Entry, err error) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(es))
	for _, e := range es {
		out[e.Name] = e.URI
	}
	return out, nil
}

// ListEntries is List with metadata, sorted by name.
func (o *object) ListEntries(ctx context.Context, prefix, regex string) ([]Entry, error) {
	match, err := matcher(prefix, regex)
	if err != nil {
		return nil, err
	}
	return o.scan(ctx, func(e Entry) bool { return match(e.Name) })
}

// scan returns the registrations keep accepts, giving up when ctx ends
// (its caller left or its deadline passed).
func (o *object) scan(ctx context.Context, keep func(Entry) bool) ([]Entry, error) {
	all, err := o.store.All()
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for i, e := range all {
		if i%ctxCheckEvery == ctxCheckEvery-1 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func matcher(prefix, regex string) (func(string) bool, error) {
	var re *regexp.Regexp
	if regex != "" {
		if len(regex) > maxRegexLen {
			return nil, invalid("regex of %d bytes (the limit is %d)", len(regex), maxRegexLen)
		}
		full := "^(?:" + regex + ")$"
		parsed, err := syntax.Parse(full, syntax.Perl)
		if err != nil {
			return nil, invalid("invalid regex %s: %v", gopyro.Clip(regex), err)
		}
		prog, err := syntax.Compile(parsed.Simplify())
		if err != nil {
			return nil, invalid("invalid regex %s: %v", gopyro.Clip(regex), err)
		}
		if len(prog.Inst) > maxRegexInsts {
			return nil, invalid("regex %s is too complex (%d instructions, the limit is %d)", gopyro.Clip(regex), len(prog.Inst), maxRegexInsts)
		}
		if re, err = regexp.Compile(full); err != nil {
			return nil, invalid("invalid regex %s: %v", gopyro.Clip(regex), err)
		}
	}
	return func(name string) bool {
		return strings.HasPrefix(name, prefix) && (re == nil || re.MatchString(name))
	}, nil
}

// YPLookup returns the registrations (name -> URI) carrying every tag of
// all and at least one tag of anyOf (each test skipped when its list is
// empty; both empty is an error).
func (o *object) YPLookup(ctx context.Context, all, anyOf []string) (map[string]string, error) {
	return uriMap(o.YPLookupEntries(ctx, all, anyOf))
}

// YPLookupEntries is YPLookup with metadata, sorted by name.
func (o *object) YPLookupEntries(ctx context.Context, all, anyOf []string) ([]Entry, error) {
	if len(all) == 0 && len(anyOf) == 0 {
		return nil, invalid("yplookup needs at least one tag")
	}
	if len(all)+len(anyOf) > MaxTags {
		return nil, invalid("yplookup with %d tags (the limit is %d)", len(all)+len(anyOf), MaxTags)
	}
	return o.scan(ctx, func(e Entry) bool {
		return hasAll(e.Metadata, all) && (len(anyOf) == 0 || slices.ContainsFunc(anyOf, func(t string) bool { return slices.Contains(e.Metadata, t) }))
	})
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// Remove removes name, or every name with prefix, or every name matching
// regex (give one of the three). It never removes the name server itself
// and returns how many registrations it removed.
func (o *object) Remove(name, prefix, regex string) (int, error) {
	given := 0
	for _, s := range []string{name, prefix, regex} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return 0, invalid("remove needs exactly one of name, prefix or regex")
	}
	if name != "" {
		if name == o.self {
			return 0, nil
		}
		n, err := o.store.Delete(name)
		if n > 0 {
			o.logChange("removed", "name", name)
		}
		return n, err
	}
	es, err := o.ListEntries(context.Background(), prefix, regex) // a removal, once begun, completes
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range es {
		if e.Name != o.self {
			names = append(names, e.Name)
		}
	}
	n, err := o.store.Delete(names...)
	if n > 0 {
		o.logChange("removed", "names", names, "count", n)
	}
	return n, err
}

// SetMetadata replaces the metadata tags of name.
func (o *object) SetMetadata(name string, metadata []string) error {
	if name == o.self {
		return invalid("%s is the name server's own name", name) // as Register says
	}
	e, err := o.get(name)
	if err != nil {
		return err
	}
	if err := checkTags(metadata); err != nil {
		return err
	}
	e.Metadata = dedupe(metadata)
	if err := o.store.Put(e, false); err != nil {
		return err
	}
	o.logChange("metadata set", "name", name, "metadata", e.Metadata)
	return nil
}

// Count returns the number of registrations.
func (o *object) Count() (int, error) {
	all, err := o.store.All()
	return len(all), err
}

// Ping does nothing: a successful call proves the name server is alive.
func (o *object) Ping() error { return nil }
