package nameserver

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gopyro/gopyro"
)

// object is the remote name server object. Its exported methods are the
// name server's calls; Pyro clients reach them by their snake_case names
// too (lookup, yplookup, set_metadata, ...).
type object struct {
	store Store
	self  string // the name server's own name, never removed
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
	for _, tag := range metadata {
		if err := gopyro.ValidateName(tag); err != nil {
			return err
		}
	}
	return o.store.Put(Entry{Name: name, URI: u.String(), Metadata: dedupe(metadata)}, safe)
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
func (o *object) List(prefix, regex string) (map[string]string, error) {
	return uriMap(o.ListEntries(prefix, regex))
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
func (o *object) ListEntries(prefix, regex string) ([]Entry, error) {
	match, err := matcher(prefix, regex)
	if err != nil {
		return nil, err
	}
	all, err := o.store.All()
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for _, e := range all {
		if match(e.Name) {
			out = append(out, e)
		}
	}
	return out, nil
}

func matcher(prefix, regex string) (func(string) bool, error) {
	var re *regexp.Regexp
	if regex != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + regex + ")$"); err != nil {
			return nil, invalid("invalid regex %q: %v", regex, err)
		}
	}
	return func(name string) bool {
		return strings.HasPrefix(name, prefix) && (re == nil || re.MatchString(name))
	}, nil
}

// YPLookup returns the registrations (name -> URI) carrying every tag of
// all and at least one tag of anyOf (each test skipped when its list is
// empty; both empty is an error).
func (o *object) YPLookup(all, anyOf []string) (map[string]string, error) {
	return uriMap(o.YPLookupEntries(all, anyOf))
}

// YPLookupEntries is YPLookup with metadata, sorted by name.
func (o *object) YPLookupEntries(all, anyOf []string) ([]Entry, error) {
	if len(all) == 0 && len(anyOf) == 0 {
		return nil, invalid("yplookup needs at least one tag")
	}
	es, err := o.store.All()
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for _, e := range es {
		if hasAll(e.Metadata, all) && (len(anyOf) == 0 || slices.ContainsFunc(anyOf, func(t string) bool { return slices.Contains(e.Metadata, t) })) {
			out = append(out, e)
		}
	}
	return out, nil
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
		return o.store.Delete(name)
	}
	es, err := o.ListEntries(prefix, regex)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range es {
		if e.Name != o.self {
			names = append(names, e.Name)
		}
	}
	return o.store.Delete(names...)
}

// SetMetadata replaces the metadata tags of name.
func (o *object) SetMetadata(name string, metadata []string) error {
	e, err := o.get(name)
	if err != nil {
		return err
	}
	for _, tag := range metadata {
		if err := gopyro.ValidateName(tag); err != nil {
			return err
		}
	}
	e.Metadata = dedupe(metadata)
	return o.store.Put(e, false)
}

// Count returns the number of registrations.
func (o *object) Count() (int, error) {
	all, err := o.store.All()
	return len(all), err
}

// Ping does nothing: a successful call proves the name server is alive.
func (o *object) Ping() error { return nil }
