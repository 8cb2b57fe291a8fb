// Package hostile holds the black-box hostile suite: attacks on a real
// gopyro daemon process, each while a well-behaved client calls it, with
// the process's memory and file descriptors watched. It has no code
// outside its tests.
package hostile
