package nameserver

import (
	"context"
	"errors"

	"github.com/gopyro/gopyro"
)

// pyroFacade is the name server as Python Pyro clients call it: Pyro4's
// and Pyro5's NameServer API (keyword arguments, a URI object from
// lookup, NamingError for every refusal), over the same store.
type pyroFacade struct{ o *object }

// namingError makes err a Pyro NamingError, keeping its code.
func namingError(err error) error {
	if err == nil {
		return nil
	}
	if ge, ok := errors.AsType[*gopyro.Error](err); ok {
		c := *ge
		c.RemoteType = "Pyro4.errors.NamingError" // Pyro5 clients get Pyro5.errors.NamingError
		return &c
	}
	return &gopyro.Error{Code: gopyro.CodeRemote, RemoteType: "Pyro4.errors.NamingError", Message: err.Error()}
}

// LookupOptions are lookup's keyword arguments.
type LookupOptions struct {
	ReturnMetadata bool `pyro:"return_metadata"`
}

// Lookup returns the URI registered under name, with its metadata when
// asked: (uri, metadata).
func (f *pyroFacade) Lookup(name string, opt LookupOptions) (any, error) {
	e, err := f.o.get(name)
	if err != nil {
		return nil, namingError(err)
	}
	u, err := gopyro.Parse(e.URI)
	if err != nil {
		return nil, namingError(err)
	}
	if opt.ReturnMetadata {
		return []any{u, nonNil(e.Metadata)}, nil
	}
	return u, nil
}

// RegisterOptions are register's arguments after name and uri.
type RegisterOptions struct {
	Safe     bool     `pyro:"safe"`
	Metadata []string `pyro:"metadata"`
}

// Register maps name to uri (a str or a URI object).
func (f *pyroFacade) Register(name, uri string, opt RegisterOptions) error {
	err := f.o.Register(name, uri, opt.Safe, opt.Metadata)
	if gopyro.CodeOf(err) == gopyro.CodeExists {
		return &gopyro.Error{Code: gopyro.CodeExists, RemoteType: "Pyro4.errors.NamingError", Message: "name already registered: " + name}
	}
	return namingError(err)
}

// SetMetadata replaces name's metadata.
func (f *pyroFacade) SetMetadata(name string, metadata []string) error {
	return namingError(f.o.SetMetadata(name, metadata))
}

// RemoveOptions are remove's arguments: one of the three.
type RemoveOptions struct {
	Name   string `pyro:"name"`
	Prefix string `pyro:"prefix"`
	Regex  string `pyro:"regex"`
}

// Remove removes by name, prefix or regex (Python's re.match: anchored at
// the start only) and returns how many it removed.
func (f *pyroFacade) Remove(opt RemoveOptions) (int, error) {
	n, err := f.o.Remove(opt.Name, opt.Prefix, pyroRegex(opt.Regex))
	return n, namingError(err)
}

// pyroRegex turns Python's re.match semantics (a match at the start) into
// the name server's whole-name match.
func pyroRegex(re string) string {
	if re == "" {
		return ""
	}
	return "(?:" + re + ").*"
}

// ListOptions are list's keyword arguments (at most one filter).
type ListOptions struct {
	Prefix         string   `pyro:"prefix"`
	Regex          string   `pyro:"regex"`
	MetadataAll    []string `pyro:"metadata_all"`
	MetadataAny    []string `pyro:"metadata_any"`
	ReturnMetadata bool     `pyro:"return_metadata"`
}

// List returns {name: uri}, or {name: (uri, metadata)} when asked.
func (f *pyroFacade) List(ctx context.Context, opt ListOptions) (map[string]any, error) {
	given := 0
	for _, set := range []bool{opt.Prefix != "", opt.Regex != "", opt.MetadataAll != nil, opt.MetadataAny != nil} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: "builtins.ValueError", Message: "you can only filter on one thing at a time"}
	}
	var es []Entry
	var err error
	if opt.MetadataAll != nil || opt.MetadataAny != nil {
		es, err = f.o.YPLookupEntries(ctx, opt.MetadataAll, opt.MetadataAny)
	} else {
		es, err = f.o.ListEntries(ctx, opt.Prefix, pyroRegex(opt.Regex))
	}
	if err != nil {
		return nil, namingError(err)
	}
	return entryMap(es, opt.ReturnMetadata), nil
}

func entryMap(es []Entry, meta bool) map[string]any {
	out := make(map[string]any, len(es))
	for _, e := range es {
		if meta {
			out[e.Name] = []any{e.URI, nonNil(e.Metadata)}
		} else {
			out[e.Name] = e.URI
		}
	}
	return out
}

// YPLookupOptions are Pyro5's yplookup keyword arguments.
type YPLookupOptions struct {
	MetaAll        []string `pyro:"meta_all"`
	MetaAny        []string `pyro:"meta_any"`
	ReturnMetadata *bool    `pyro:"return_metadata"` // default true, as Pyro5
}

// Yplookup returns the registrations carrying all of meta_all or any of
// meta_any (not both; neither gives {}).
func (f *pyroFacade) Yplookup(ctx context.Context, opt YPLookupOptions) (map[string]any, error) {
	if opt.MetaAll != nil && opt.MetaAny != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: "builtins.ValueError", Message: "you can't use meta_all or meta_any at the same time"}
	}
	if len(opt.MetaAll) == 0 && len(opt.MetaAny) == 0 {
		return map[string]any{}, nil
	}
	es, err := f.o.YPLookupEntries(ctx, opt.MetaAll, opt.MetaAny)
	if err != nil {
		return nil, namingError(err)
	}
	return entryMap(es, opt.ReturnMetadata == nil || *opt.ReturnMetadata), nil
}

// Count returns the number of registrations (the name server's own
// included).
func (f *pyroFacade) Count() (int, error) { return f.o.Count() }

// Ping does nothing.
func (f *pyroFacade) Ping() error { return nil }
