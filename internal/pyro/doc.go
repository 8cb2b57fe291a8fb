// Package pyro speaks Python Pyro's wire protocols: Pyro4 (protocol 48)
// and Pyro5 (protocol 502) frames, and the serializers Python clients use
// with them (serpent, json, marshal, msgpack; never the pickle family,
// which is remote code execution).
//
// Decoded payloads are Python values in Go form (see [Tuple], [Set],
// [Dict]); [Assign] converts them to the Go types a method declares, with
// range checks, and [FromGo] turns Go results back into Python values.
// Every decoder is bounded: nesting depth, element counts that the input
// cannot back, and sizes are refused before anything is allocated, and
// nothing is ever evaluated.
package pyro
